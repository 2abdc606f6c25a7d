/**
 * `/`: start a session (a name and a language, whose starter file the room begins with) or
 * open a join link. Only links to this page's own server are opened here, so a token never
 * goes to another origin.
 */
import { h, fill } from './dom.js'
import { LANGUAGES, STARTERS } from '../editor/languages.js'
import { recentSessions, rememberSession, storeName, storedName } from './identity.js'
import { ROOM_ID, joinPathOf } from '../room/links.js'
import { me, signInUrl, signOut, type Me } from '../net/account.js'

export function renderHome (root: HTMLElement): void {
  const problem = h('p', { class: 'problem', role: 'alert' })
  const name = h('input', { name: 'name', required: true, maxlength: 64, placeholder: 'Ada', value: storedName() ?? '', autocomplete: 'nickname' })
  const session = h('input', { name: 'session', maxlength: 100, placeholder: 'untitled' })
  const language = h('select', { name: 'language' },
    ...LANGUAGES.filter(l => STARTERS[l.id]).map(l => h('option', { value: l.id }, l.name)))
  const approval = h('input', { type: 'checkbox', name: 'approval' })
  const create = h('form', { class: 'card', 'data-testid': 'create' },
    h('h2', {}, 'Start a session'),
    h('label', {}, 'Your name', name),
    h('label', {}, 'Session name', session),
    h('label', {}, 'Language', language),
    h('label', { class: 'check' }, approval, 'Ask me before anyone joins'),
    h('button', { type: 'submit' }, 'Start'))
  create.addEventListener('submit', (e) => {
    e.preventDefault()
    fill(problem)
    storeName(name.value)
    startSession(session.value, language.value, approval.checked).catch(err => fill(problem, String(err instanceof Error ? err.message : err)))
  })

  const link = h('input', { name: 'link', required: true, placeholder: `${location.origin}/join/…?token=…` })
  const join = h('form', { class: 'card', 'data-testid': 'join' },
    h('h2', {}, 'Join with a link'),
    h('label', {}, 'Join link', link),
    h('button', { type: 'submit' }, 'Join'))
  join.addEventListener('submit', (e) => {
    e.preventDefault()
    const r = joinPathOf(link.value, location.origin)
    if ('problem' in r) fill(problem, r.problem)
    else location.assign(r.path)
  })

  const account = h('div', { class: 'account', 'data-testid': 'account' })
  void me().then(m => showAccount(account, m, create, name))

  const recent = recentSessions()
  fill(root, h('main', { class: 'home' },
    h('header', { class: 'home-head' }, h('h1', {}, 'mesh'), h('p', {}, 'Edit code together: from this browser, VS Code or Neovim, in one room.'), account),
    problem,
    h('div', { class: 'cards' }, create, join),
    recent.length > 0 && h('section', { class: 'card recent' },
      h('h2', {}, 'Recent sessions'),
      h('ul', {}, ...recent.map(r => h('li', {}, h('a', { href: r.openedPath }, r.name), ' ', h('small', {}, new Date(r.at).toLocaleString())))))))
}

/** Who is signed in, with Sign in or Sign out; with accounts on, starting a session needs
 * sign-in and the name is the provider's (shown, not typed). */
function showAccount (el: HTMLElement, m: Me, create: HTMLFormElement, name: HTMLInputElement): void {
  if (!m.accounts) {
    fill(el)
    return
  }
  const nameLabel = name.closest('label')
  if (m.user) {
    const out = h('button', { type: 'button', class: 'small', 'data-testid': 'sign-out' }, 'Sign out')
    out.addEventListener('click', () => { void signOut().then(() => location.reload()) })
    fill(el, h('span', { 'data-testid': 'signed-in-as' }, 'Signed in as ', h('strong', {}, m.user.name),
      h('span', { class: 'verified', title: 'Signed in: the name is verified' }, ' ✓'),
      m.user.email ? h('small', {}, ` ${m.user.email}`) : null), ' ', out)
    // The room shows the provider's name; the typed one would not be used.
    name.required = false
    name.value = m.user.name
    if (nameLabel) nameLabel.hidden = true
    return
  }
  fill(el, h('span', {}, 'Not signed in. '),
    h('a', { class: 'button', href: signInUrl(location.pathname), 'data-testid': 'sign-in' }, 'Sign in'))
  const start = create.querySelector('button[type=submit]')
  if (start instanceof HTMLButtonElement) start.disabled = true
  create.append(h('p', { class: 'note' }, 'This server has accounts: sign in to start a session. Join links work without signing in.'))
}

async function startSession (name: string, language: string, approval: boolean): Promise<void> {
  const resp = await fetch('/api/sessions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: name.trim() || undefined, approval: approval || undefined }),
  })
  const body: unknown = await resp.json().catch(() => null)
  const o = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  if (!resp.ok) throw new Error(typeof o.message === 'string' ? o.message : `the server answered ${resp.status}`)
  if (typeof o.id !== 'string' || !ROOM_ID.test(o.id) || typeof o.join_link !== 'string' || typeof o.read_link !== 'string' || typeof o.host_token !== 'string') {
    throw new Error('the server answered with something that is not a new session')
  }
  // The server's links name its public URL; this page opens them on its own origin.
  const path = (link: string) => { const u = new URL(link); return `${u.pathname}${u.search}` }
  const joinPath = path(o.join_link)
  // The creator comes in through the host's link: its first connection takes the host's seat.
  const hostPath = `/join/${o.id}?token=${encodeURIComponent(o.host_token)}`
  rememberSession({ id: o.id, name: typeof o.name === 'string' ? o.name : o.id, joinPath, readPath: path(o.read_link), openedPath: hostPath, at: Date.now() })
  location.assign(`${hostPath}#starter=${encodeURIComponent(language)}`)
}
