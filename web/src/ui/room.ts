/**
 * `/join/{id}?token=...`: the room. The layout is a frame of panels around the editor: files
 * and people on the left, tabs and editors in the middle (with a bottom slot where the run
 * and debug panels, see dock.ts), invite and chat on the right. Each panel is its own module that
 * reads the room through the provider and the shared document.
 */
import * as Y from 'yjs'
import { MeshProvider, type ConnectionStatus } from '../net/provider.js'
import { KeptReplica } from '../net/persistence.js'
import type { Role } from '../net/messages.js'
import { h, fill } from './dom.js'
import { myColor, rememberSession, recentSessions, storeName, storedName } from './identity.js'
import { Workspace } from './workspace.js'
import { ChatPanel } from './chat.js'
import { Dock } from './dock.js'
import { Follower } from './follow.js'
import { Shortcuts } from './shortcuts.js'
import { RunPanel } from '../run/panel.js'
import { DebugPanel } from '../debug/panel.js'
import { PeoplePanel } from './people.js'
import { createFile } from '../room/files.js'
import { STARTERS } from '../editor/languages.js'
import { ROOM_ID } from '../room/links.js'

/** How long a notice (an error from the server, a refused file name) stays up. */
const NOTICE_MS = 8000

/** The CSP nonce the server put into the page, for CodeMirror's `<style>` elements. */
function styleNonce (): string {
  const v = document.querySelector<HTMLMetaElement>('meta[name="mesh-style-nonce"]')?.content ?? ''
  return /^[0-9a-f]+$/.test(v) ? v : ''
}

export function renderRoom (root: HTMLElement, roomId: string): void {
  const token = new URLSearchParams(location.search).get('token')
  if (!ROOM_ID.test(roomId) || !token) {
    fill(root, h('main', { class: 'home' }, h('h1', {}, 'mesh'),
      h('p', { class: 'problem' }, 'This join link is incomplete: it needs a room id and a token. Ask for the whole link.'),
      h('p', {}, h('a', { href: '/' }, 'Start or join another session'))))
    return
  }
  const name = storedName()
  if (!name) {
    askName(root, () => renderRoom(root, roomId))
    return
  }
  void openRoom(root, roomId, token, name)
}

function askName (root: HTMLElement, then: () => void): void {
  const input = h('input', { name: 'name', required: true, maxlength: 64, placeholder: 'Ada', autocomplete: 'nickname' })
  const form = h('form', { class: 'card', 'data-testid': 'name-gate' },
    h('h2', {}, 'Join the session'),
    h('label', {}, 'Your name, as the others will see it', input),
    h('button', { type: 'submit' }, 'Join'))
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    if (!input.value.trim()) return
    storeName(input.value)
    then()
  })
  fill(root, h('main', { class: 'home' }, h('h1', {}, 'mesh'), form))
  input.focus()
}

async function openRoom (root: HTMLElement, roomId: string, token: string, name: string): Promise<void> {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  const url = `${scheme}://${location.host}/ws/${roomId}?token=${encodeURIComponent(token)}`
  // The copy of the room this browser kept loads before the provider connects: edits made
  // offline in an earlier visit go to the room with the first sync. The provider listens to
  // the document first, so each edit goes to the socket before it goes to IndexedDB.
  const doc = new Y.Doc()
  const provider = new MeshProvider(url, { name, color: myColor() }, doc, { connect: false })
  const kept = await KeptReplica.open(roomId, doc, (origin) => origin === provider)
  provider.start()
  rememberSession({ id: roomId, openedPath: `${location.pathname}${location.search}`, at: Date.now() })

  const status = h('span', { class: 'status', 'data-testid': 'status', role: 'status' })
  const roleBadge = h('span', { class: 'role', 'data-testid': 'role' })
  const title = h('span', { class: 'title', 'data-testid': 'room-name' }, 'mesh session')
  const notices = h('div', { class: 'notices', 'aria-live': 'polite' })
  const followBanner = h('div', { class: 'follow-banner', 'data-testid': 'follow-banner', hidden: true })
  const readerBanner = h('div', { class: 'reader-banner', 'data-testid': 'reader-banner', hidden: true },
    'You joined with a read-only link: you can follow along, select and chat, but not edit.')

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
  const people = new PeoplePanel(provider, (path) => workspace.open(path), follower)
  const chat = new ChatPanel(provider, notify)
  const dock = new Dock()
  const shortcuts = new Shortcuts()
  shortcuts.add({ keys: 'Escape', label: 'Stop following', inInputs: true, run: () => { if (follower.following === null) return false; follower.stop('you pressed Escape') } })
  const run = new RunPanel(provider, workspace, dock, shortcuts, notify)
  const debug = new DebugPanel(provider, workspace, dock, shortcuts, notify)
  dock.add('run', 'Run', run.el)
  dock.add('debug', 'Debug', debug.el)

  const invite = h('section', { class: 'panel invite' }, h('h2', {}, 'Invite'), inviteLinks(roomId))

  fill(root, h('div', { class: 'room' },
    h('header', { class: 'bar' },
      h('a', { class: 'brand', href: '/' }, 'mesh'), title, status, roleBadge,
      h('span', { class: 'me' }, `you: ${name}`)),
    h('aside', { class: 'left' }, workspace.treePanel, people.el),
    h('section', { class: 'center' }, readerBanner, followBanner, workspace.tabsEl, workspace.editorsEl, dock.el),
    h('aside', { class: 'right' }, invite, chat.el),
    notices))

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
  provider.on('welcome', ({ role }) => {
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

  fetch(`/api/sessions/${roomId}`, { headers: { authorization: `Bearer ${token}` } })
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
 * else this page's own link (which grants the same role as ours). */
function inviteLinks (roomId: string): HTMLElement {
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
  return h('div', {}, row('This page\'s link (gives your role)', `${location.pathname}${location.search}`, 'join-link'))
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
