/**
 * `/join/{id}?token=...`: the room. The layout is a frame of panels around the editor: files,
 * people and the host's controls on the left, tabs and editors in the middle (with a bottom
 * slot where the run and debug panels, see dock.ts), invite and chat on the right. Each panel
 * is its own module that reads the room through the provider and the shared document. In
 * front of the room, when the server says so, the lobby or the end of the session (gate.ts).
 *
 * The token leaves the address bar as soon as the page has read it (net/credentials.ts).
 */
import * as Y from 'yjs'
import { MeshProvider, type ConnectionStatus } from '../net/provider.js'
import { KeptReplica } from '../net/persistence.js'
import type { Role } from '../net/messages.js'
import { h, fill } from './dom.js'
import { myColor, rememberSession, recentSessions, storeName, storedName } from './identity.js'
import { me, signInUrl } from '../net/account.js'
import { Workspace } from './workspace.js'
import { ChatPanel } from './chat.js'
import { GhostPanel } from './ghost.js'
import { Dock } from './dock.js'
import { Follower } from './follow.js'
import { Shortcuts } from './shortcuts.js'
import { RunPanel } from '../run/panel.js'
import { DebugPanel } from '../debug/panel.js'
import { PeoplePanel } from './people.js'
import { createFile } from '../room/files.js'
import { STARTERS } from '../editor/languages.js'
import { ROOM_ID } from '../room/links.js'
import { RoomCredentials, withoutToken } from '../net/credentials.js'
import { Gate } from './gate.js'
import { HostControls } from './host.js'
import { Announcer } from './announce.js'

/** How long a notice (an error from the server, a refused file name) stays up. */
const NOTICE_MS = 8000

/** The CSP nonce the server put into the page, for CodeMirror's `<style>` elements. */
function styleNonce (): string {
  const v = document.querySelector<HTMLMetaElement>('meta[name="mesh-style-nonce"]')?.content ?? ''
  return /^[0-9a-f]+$/.test(v) ? v : ''
}

export function renderRoom (root: HTMLElement, roomId: string): void {
  const urlToken = new URLSearchParams(location.search).get('token')
  const credentials = new RoomCredentials(sessionStorage, roomId)
  if (ROOM_ID.test(roomId) && urlToken) {
    // The home page's recent list keeps the whole link (this browser's own storage); the
    // address bar loses the token, and reloads of this tab find it in sessionStorage.
    rememberSession({ id: roomId, openedPath: `${location.pathname}${location.search}`, at: Date.now() })
    history.replaceState(null, '', `${location.pathname}${withoutToken(location.search)}${location.hash}`)
  }
  if (!ROOM_ID.test(roomId) || !credentials.adopt(urlToken)) {
    fill(root, h('main', { class: 'home' }, h('h1', {}, 'mesh'),
      h('p', { class: 'problem' }, 'This join link is incomplete: it needs a room id and a token. Ask for the whole link.'),
      h('p', {}, h('a', { href: '/' }, 'Start or join another session'))))
    return
  }
  void me().then(m => {
    // Signed in: the room shows the provider's name, so there is none to ask for.
    if (m.user) {
      void openRoom(root, roomId, credentials, m.user.name)
      return
    }
    const name = storedName()
    if (!name) {
      askName(root, m.accounts, () => { void openRoom(root, roomId, credentials, storedName() ?? 'anonymous') })
      return
    }
    void openRoom(root, roomId, credentials, name)
  })
}

function askName (root: HTMLElement, accounts: boolean, then: () => void): void {
  const input = h('input', { name: 'name', required: true, maxlength: 64, placeholder: 'Ada', autocomplete: 'nickname' })
  const form = h('form', { class: 'card', 'data-testid': 'name-gate' },
    h('h2', {}, 'Join the session'),
    h('label', {}, 'Your name, as the others will see it', input),
    h('button', { type: 'submit' }, 'Join'),
    // With accounts on, signing in shows a verified name instead (and opens invitations
    // made for you); it comes back to this link, whose token this tab keeps.
    accounts && h('p', { class: 'note' }, 'Or ',
      h('a', { href: signInUrl(`${location.pathname}${location.search}`), 'data-testid': 'sign-in' }, 'sign in'),
      ' to join under your verified name.'))
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    if (!input.value.trim()) return
    storeName(input.value)
    then()
  })
  fill(root, h('main', { class: 'home' }, h('h1', {}, 'mesh'), form))
  input.focus()
}

async function openRoom (root: HTMLElement, roomId: string, credentials: RoomCredentials, name: string): Promise<void> {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  // No token in the socket's URL: the provider sends it as the first message.
  const url = `${scheme}://${location.host}/ws/${roomId}`
  // The copy of the room this browser kept loads before the provider connects: edits made
  // offline in an earlier visit go to the room with the first sync. The provider listens to
  // the document first, so each edit goes to the socket before it goes to IndexedDB.
  const doc = new Y.Doc()
  const provider = new MeshProvider(url, { name, color: myColor() }, credentials, doc, { connect: false })
  const kept = await KeptReplica.open(roomId, doc, (origin) => origin === provider)
  provider.start()
  rememberSession({ id: roomId, at: Date.now() })

  const status = h('span', { class: 'status', 'data-testid': 'status', role: 'status' })
  const roleBadge = h('span', { class: 'role', 'data-testid': 'role' })
  const title = h('span', { class: 'title', 'data-testid': 'room-name' }, 'mesh session')
  const notices = h('div', { class: 'notices', 'aria-live': 'polite' })
  const followBanner = h('div', { class: 'follow-banner', 'data-testid': 'follow-banner', hidden: true })
  const readerBanner = h('div', { class: 'reader-banner', 'data-testid': 'reader-banner', hidden: true },
    'You are a reader here (read-only): you can follow along, select and chat, but not edit.')
  const me = h('span', { class: 'me', 'data-testid': 'me', title: 'Your name as the others see it (not verified)' }, `you: ${name}`)

  const notify = (text: string) => {
    const n = h('div', { class: 'notice', 'data-testid': 'notice' }, text)
    notices.append(n)
    setTimeout(() => n.remove(), NOTICE_MS)
  }

  const workspace = new Workspace(provider, styleNonce(), notify, () => {
    readerBanner.classList.remove('flash')
    void readerBanner.offsetWidth // restart the animation
    readerBanner.classList.add('flash')
  })
  const follower = new Follower(provider, workspace)
  workspace.onUserTakeover = (why) => follower.stop(why)
  const host = new HostControls(provider, notify)
  const people = new PeoplePanel(provider, (path) => workspace.open(path), follower, (p) => host.actionsFor(p))
  new Announcer(provider, notify)
  const chat = new ChatPanel(provider, notify)
  const ghost = new GhostPanel(provider, workspace, notify)
  const dock = new Dock()
  const shortcuts = new Shortcuts()
  shortcuts.add({ keys: 'Escape', label: 'Stop following', inInputs: true, run: () => { if (follower.following === null) return false; follower.stop('you pressed Escape') } })
  const run = new RunPanel(provider, workspace, dock, shortcuts, notify)
  const debug = new DebugPanel(provider, workspace, dock, shortcuts, notify)
  dock.add('run', 'Run', run.el)
  dock.add('debug', 'Debug', debug.el)

  const invite = h('section', { class: 'panel invite' }, h('h2', {}, 'Invite'), inviteLinks(roomId, credentials))

  const room = h('div', { class: 'room' },
    h('header', { class: 'bar' },
      h('a', { class: 'brand', href: '/' }, 'mesh'), title, status, roleBadge, me),
    h('aside', { class: 'left' }, workspace.treePanel, people.el, host.panel),
    h('section', { class: 'center' }, readerBanner, followBanner, workspace.tabsEl, workspace.editorsEl, dock.el),
    h('aside', { class: 'right' }, invite, ghost.el, chat.el),
    host.requests, host.kickDialog)
  const gate = new Gate()
  fill(root, room, gate.el, notices)

  provider.on('lobby', ({ message }) => {
    room.hidden = true
    gate.lobby(name, message, () => {
      provider.destroy()
      gate.ended('You left the lobby', 'The host no longer sees your request.', () => location.reload())
    })
  })
  provider.on('ended', ({ kind, message }) => {
    room.hidden = true
    switch (kind) {
      case 'kicked':
        gate.ended('You were removed from this session', `${message} If this was a mistake, ask the host for a new link.`)
        break
      case 'refused':
        gate.ended('The host did not let you in', message, () => location.reload())
        break
      case 'closed':
        gate.ended('This session is closed to you', message)
        break
    }
  })

  follower.onChange((target, reason) => {
    const who = target === null ? undefined : provider.participants.get(target)
    if (who) {
      const stop = h('button', { type: 'button', class: 'small' }, 'Stop (Esc)')
      stop.addEventListener('click', () => follower.stop('you stopped'))
      fill(followBanner, `Following ${who.name}: you see the file and lines they see. `, stop)
      followBanner.style.borderColor = who.color
      followBanner.hidden = false
    } else {
      followBanner.hidden = true
      if (reason) notify(`Stopped following: ${reason}.`)
    }
  })

  const showStatus = (s: ConnectionStatus) => {
    status.dataset.state = s.state
    switch (s.state) {
      case 'connecting': status.textContent = 'connecting…'; break
      case 'waiting': status.textContent = 'waiting for the host'; break
      case 'connected': status.textContent = 'connected'; break
      case 'offline':
        status.textContent = `offline: ${s.reason}; retrying in ${Math.ceil(s.retryInMs / 1000)} s` +
          (kept.keeping ? ' · your edits are kept in this browser' : '')
        break
      case 'closed': status.textContent = `disconnected: ${s.reason}`; break
    }
  }
  showStatus(provider.status)
  provider.on('status', showStatus)
  provider.on('welcome', () => {
    if (gate.shown) gate.hide()
    room.hidden = false
    me.textContent = `you: ${provider.name}`
    if (provider.name !== name) notify(`Someone here is already called ${name}, so the others see you as ${provider.name}.`)
  })
  provider.on('role', (role) => {
    roleBadge.textContent = role
    roleBadge.dataset.role = role
    readerBanner.hidden = role !== 'reader'
    workspace.setRole(role)
  })
  provider.on('error', (e) => notify(`${e.code}: ${e.message}`))
  provider.on('synced', () => {
    // The role comes with `welcome`, which the server sends before its sync answer; wait
    // for it all the same rather than rely on the order.
    if (provider.role) onSynced(provider, workspace)
    else {
      const off = provider.on('welcome', () => { off(); onSynced(provider, workspace) })
    }
  })

  // The room's name is the room's: a page in the lobby asks only once let in.
  const offWelcome = provider.on('welcome', () => { offWelcome(); showTitle(roomId, provider, title) })
}

function showTitle (roomId: string, provider: MeshProvider, title: HTMLElement): void {
  fetch(`/api/sessions/${roomId}`, { headers: { authorization: `Bearer ${provider.restToken() ?? ''}` } })
    .then(r => (r.ok ? r.json() : null))
    .then((info: unknown) => {
      const n = (info as { name?: unknown } | null)?.name
      if (typeof n === 'string' && n) {
        title.textContent = n.slice(0, 100)
        document.title = `${title.textContent} · mesh`
        rememberSession({ id: roomId, name: title.textContent })
      }
    })
    .catch(() => { /* the title is cosmetic */ })
}

/** The links to share: the writer and reader links when this browser created the room,
 * else the link this page came in through (which grants its role to whoever opens it). */
function inviteLinks (roomId: string, credentials: RoomCredentials): HTMLElement {
  const known = recentSessions().find(r => r.id === roomId)
  const row = (label: string, path: string, testid: string) => {
    const input = h('input', { readonly: true, value: `${location.origin}${path}`, 'data-testid': testid })
    const copy = h('button', { type: 'button' }, 'Copy')
    copy.addEventListener('click', () => {
      input.select()
      navigator.clipboard?.writeText(input.value).catch(() => { /* selected for manual copy */ })
    })
    return h('label', { class: 'link' }, label, h('span', { class: 'row' }, input, copy))
  }
  if (known?.joinPath && known.readPath) {
    return h('div', {}, row('Can edit', known.joinPath, 'join-link'), row('Read only', known.readPath, 'read-link'))
  }
  return h('div', {}, row('The link you came in with', `${location.pathname}?token=${encodeURIComponent(credentials.linkToken() ?? '')}`, 'join-link'))
}

/** After the first sync: a new session gets its starter file, and a file opens. */
function onSynced (provider: MeshProvider, workspace: Workspace): void {
  const m = /^#starter=([a-z]+)$/.exec(location.hash)
  const starter = m ? STARTERS[m[1]] : undefined
  if (m) history.replaceState(null, '', `${location.pathname}${location.search}`)
  const canWrite = (role: Role | null) => role === 'writer' || role === 'host'
  if (starter && workspace.paths().length === 0 && canWrite(provider.role)) {
    createFile(provider.doc, starter.path, starter.text)
    provider.doc.getMap('meta').set('language', m![1])
  }
  workspace.openDefault()
}
