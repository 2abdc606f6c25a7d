/**
 * `/`: start a session (a name and a language, whose starter file the room begins with) or
 * open a join link. Only links to this page's own server are opened here, so a token never
 * goes to another origin.
 */
import { h, fill } from './dom.js'
import { LANGUAGES, STARTERS } from '../editor/languages.js'
import { recentSessions, rememberSession, storeName, storedName } from './identity.js'
import { ROOM_ID, joinPathOf } from '../room/links.js'

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

  const recent = recentSessions()
  fill(root, h('main', { class: 'home' },
    h('header', { class: 'home-head' }, h('h1', {}, 'mesh'), h('p', {}, 'Edit code together: from this browser, VS Code or Neovim, in one room.')),
    problem,
    h('div', { class: 'cards' }, create, join),
    recent.length > 0 && h('section', { class: 'card recent' },
      h('h2', {}, 'Recent sessions'),
      h('ul', {}, ...recent.map(r => h('li', {}, h('a', { href: r.openedPath }, r.name), ' ', h('small', {}, new Date(r.at).toLocaleString())))))))
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
