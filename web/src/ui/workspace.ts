/**
 * The files of the room: the file tree (create, rename, delete), the tabs, one editor per
 * open file, and the local cursor published in mesh's awareness shape. Remote cursors are
 * handed to each open editor whenever awareness or the participant list changes.
 */
import * as Y from 'yjs'
import type { MeshProvider } from '../net/provider.js'
import type { Role } from '../net/messages.js'
import { FileEditor } from '../editor/editor.js'
import { cursorState, remoteCursors } from '../room/presence.js'
import { createFile, deleteFile, filePaths, fileText, fileTree, filesOf, renameFile, renamesIn, type TreeFolder } from '../room/files.js'
import { h, fill } from './dom.js'
import type { FollowHost, FollowPlace } from './follow.js'

/** The least time between two cursor publications: the server relays at most 60 awareness
 * updates a second per connection (burst 240); 20 a second leaves room and still looks live. */
export const CURSOR_PUBLISH_INTERVAL_MS = 50

/** How long a delete button waits for its confirming second click. */
const CONFIRM_MS = 3000

export class Workspace implements FollowHost {
  readonly treePanel: HTMLElement
  readonly tabsEl: HTMLElement
  readonly editorsEl: HTMLElement
  private readonly tree: HTMLElement
  private readonly newFile: HTMLButtonElement
  private readonly editors = new Map<string, FileEditor>()
  /** The Y.Text each open editor is bound to. */
  private readonly texts = new Map<string, Y.Text>()
  private active: string | null = null
  private readonly activeListeners: Array<(path: string | null) => void> = []
  /** Whom we follow, published in our state. */
  private following: number | null = null
  /** Called when the user takes over (types, clicks an editor, opens a file themselves). */
  onUserTakeover: (what: string) => void = () => {}
  private role: Role | null = null
  private publishTimer: ReturnType<typeof setTimeout> | null = null
  private lastPublish = 0
  /** Our awareness state as last published (JSON), to skip publishing it again. */
  private published = ''

  constructor (
    private readonly provider: MeshProvider,
    private readonly nonce: string,
    private readonly notify: (text: string) => void,
    private readonly onReadOnlyAttempt: () => void,
  ) {
    this.tree = h('div', { class: 'tree', 'data-testid': 'file-tree', role: 'tree' })
    this.newFile = h('button', { type: 'button', class: 'small', 'data-testid': 'new-file', title: 'New file', disabled: true }, '+ New file')
    this.newFile.addEventListener('click', () => this.promptNewFile())
    this.treePanel = h('section', { class: 'panel files' }, h('h2', {}, 'Files', this.newFile), this.tree)
    this.tabsEl = h('div', { class: 'tabs', role: 'tablist', 'data-testid': 'tabs' })
    this.editorsEl = h('div', { class: 'editors' }, h('p', { class: 'empty' }, 'Open a file from the list on the left.'))

    const files = filesOf(provider.doc)
    files.observe((event: Y.YMapEvent<unknown>) => this.onFilesChanged(event))
    provider.awareness.on('change', () => this.refreshCursors())
    provider.on('participants', () => this.refreshCursors())
    // The server may have made our name unique (`Ada (2)`): publish the name it assigned.
    provider.on('welcome', () => this.publishLocal())
    this.publishLocal()
    this.renderTree()
  }

  /** The file in front, if any. */
  activePath (): string | null {
    return this.active
  }

  /** The main selection of the file in front with its 1-based lines, or null when nothing
   * is selected (a selection that ends at a line's start does not take in that line). */
  selection (): { path: string; start_line: number; end_line: number; text: string } | null {
    const ed = this.active ? this.editors.get(this.active) : undefined
    if (!ed) return null
    const state = ed.view.state
    const r = state.selection.main
    if (r.empty) return null
    const start = state.doc.lineAt(r.from)
    let end = state.doc.lineAt(r.to)
    if (r.to === end.from && end.number > start.number) end = state.doc.line(end.number - 1)
    return { path: ed.path, start_line: start.number, end_line: end.number, text: state.sliceDoc(r.from, r.to) }
  }

  /** The editor of `path`, when it is open. */
  editorOf (path: string): FileEditor | undefined {
    return this.editors.get(path)
  }

  /** Calls `fn` whenever the file in front changes (or none is). */
  onActiveChange (fn: (path: string | null) => void): void {
    this.activeListeners.push(fn)
  }

  paths (): string[] {
    return filePaths(this.provider.doc)
  }

  canWrite (): boolean {
    return this.role === 'writer' || this.role === 'host'
  }

  setRole (role: Role): void {
    this.role = role
    this.newFile.disabled = !this.canWrite()
    for (const ed of this.editors.values()) ed.setReadOnly(!this.canWrite())
    this.renderTree()
  }

  /** Opens the first file when none is open yet. */
  openDefault (): void {
    if (this.active) return
    const first = this.paths()[0]
    if (first) this.open(first, 'page')
  }

  /** Opens `path` in front. `how`: the user asked (which ends follow mode), follow mode
   * did (no focus taken), or the page itself did (a rename, the first file). */
  open (path: string, how: 'user' | 'follow' | 'page' = 'user'): void {
    const text = fileText(this.provider.doc, path)
    if (!text) return
    if (how === 'user' && path !== this.active) this.onUserTakeover('you opened another file')
    if (!this.editors.has(path)) {
      const host = h('div', { class: 'editor-host' })
      this.editorsEl.querySelector('.empty')?.remove()
      this.editorsEl.append(host)
      this.editors.set(path, new FileEditor(host, {
        path,
        text,
        readOnly: !this.canWrite(),
        nonce: this.nonce,
        onLocalChange: () => this.schedulePublish(),
        onReadOnlyAttempt: this.onReadOnlyAttempt,
        onUserInput: () => this.onUserTakeover('you took over'),
      }))
      this.texts.set(path, text)
    }
    const changed = this.active !== path
    this.active = path
    if (changed) for (const fn of this.activeListeners) fn(path)
    for (const [p, ed] of this.editors) (ed.view.dom.parentElement as HTMLElement).hidden = p !== path
    this.renderTabs()
    this.renderTree()
    this.refreshCursors()
    if (how !== 'follow') this.editors.get(path)?.view.focus()
    this.schedulePublish()
  }

  reveal (place: FollowPlace): boolean {
    if (!fileText(this.provider.doc, place.path)) return false
    if (this.active !== place.path) this.open(place.path, 'follow')
    this.editors.get(place.path)?.scrollTo(place)
    return true
  }

  setFollowing (connId: number | null): void {
    this.following = connId
    this.schedulePublish()
  }

  close (path: string): void {
    const ed = this.editors.get(path)
    if (!ed) return
    ed.view.dom.parentElement?.remove()
    ed.destroy()
    this.editors.delete(path)
    this.texts.delete(path)
    if (this.active === path) {
      this.active = null
      for (const fn of this.activeListeners) fn(null)
      const next = [...this.editors.keys()].pop()
      if (next) this.open(next, 'page')
      else this.editorsEl.append(h('p', { class: 'empty' }, 'Open a file from the list on the left.'))
    }
    this.renderTabs()
    this.renderTree()
    this.schedulePublish()
  }

  private onFilesChanged (event: Y.YMapEvent<unknown>): void {
    const renames = renamesIn(event, this.provider.doc)
    for (const [from, to] of renames) {
      if (!this.editors.has(from)) continue
      const wasActive = this.active === from
      this.close(from)
      if (wasActive) this.open(to, 'page')
    }
    for (const path of [...this.editors.keys()]) {
      // A file that was deleted closes; one replaced by another Y.Text reopens on it.
      const text = fileText(this.provider.doc, path)
      if (!text) this.close(path)
      else if (this.texts.get(path) !== text) {
        const wasActive = this.active === path
        this.close(path)
        if (wasActive) this.open(path, 'page')
      }
    }
    this.renderTree()
  }

  private renderTabs (): void {
    fill(this.tabsEl, ...[...this.editors.keys()].map(path => {
      const label = h('button', { type: 'button', class: 'tab-label', role: 'tab', 'aria-selected': String(path === this.active), title: path }, path.split('/').pop() ?? path)
      label.addEventListener('click', () => this.open(path))
      const x = h('button', { type: 'button', class: 'tab-close', title: `Close ${path}`, 'aria-label': `Close ${path}` }, '×')
      x.addEventListener('click', () => this.close(path))
      return h('span', { class: path === this.active ? 'tab active' : 'tab', 'data-path': path }, label, x)
    }))
  }

  private renderTree (): void {
    const root = fileTree(this.paths())
    if (root.folders.length === 0 && root.files.length === 0) {
      fill(this.tree, h('p', { class: 'empty' }, this.canWrite() ? 'No files yet: create one.' : 'No files yet.'))
      return
    }
    fill(this.tree, this.renderFolder(root))
  }

  private renderFolder (folder: TreeFolder): HTMLElement {
    return h('ul', {},
      ...folder.folders.map(f => h('li', { class: 'folder' }, h('span', { class: 'folder-name' }, `${f.name}/`), this.renderFolder(f))),
      ...folder.files.map(f => this.renderFile(f.name, f.path)))
  }

  private renderFile (name: string, path: string): HTMLElement {
    const open = h('button', { type: 'button', class: path === this.active ? 'file active' : 'file', title: path }, name)
    open.addEventListener('click', () => this.open(path))
    const li = h('li', { 'data-path': path, role: 'treeitem' }, open)
    if (this.canWrite()) {
      const rename = h('button', { type: 'button', class: 'icon', title: `Rename ${path}`, 'data-action': 'rename' }, '✎')
      rename.addEventListener('click', () => this.promptRename(li, path))
      const del = h('button', { type: 'button', class: 'icon', title: `Delete ${path}`, 'data-action': 'delete' }, '✕')
      let armed: ReturnType<typeof setTimeout> | null = null
      del.addEventListener('click', () => {
        if (armed === null) {
          del.textContent = 'delete?'
          del.classList.add('armed')
          armed = setTimeout(() => { armed = null; del.textContent = '✕'; del.classList.remove('armed') }, CONFIRM_MS)
          return
        }
        clearTimeout(armed)
        const r = deleteFile(this.provider.doc, path)
        if (!r.ok) this.notify(r.reason)
      })
      li.append(rename, del)
    }
    return li
  }

  /** An inline text field in the tree; Enter commits, Escape cancels. */
  private inlineInput (place: HTMLElement, initial: string, commit: (value: string) => string | null): void {
    const input = h('input', { class: 'inline', value: initial, 'data-testid': 'path-input', spellcheck: 'false' })
    const error = h('div', { class: 'inline-error', role: 'alert' })
    const box = h('div', { class: 'inline-box' }, input, error)
    place.append(box)
    input.focus()
    input.setSelectionRange(initial.lastIndexOf('/') + 1, initial.lastIndexOf('.') > initial.lastIndexOf('/') ? initial.lastIndexOf('.') : initial.length)
    let done = false
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { done = true; box.remove() }
      if (e.key !== 'Enter') return
      e.preventDefault()
      const problem = commit(input.value.trim())
      if (problem) error.textContent = problem
      else { done = true; box.remove() }
    })
    input.addEventListener('blur', () => { if (!done) setTimeout(() => box.remove(), 150) })
  }

  private promptNewFile (): void {
    const dir = this.active?.includes('/') ? this.active.slice(0, this.active.lastIndexOf('/') + 1) : ''
    this.inlineInput(this.tree, dir, (path) => {
      const r = createFile(this.provider.doc, path)
      if (!r.ok) return r.reason
      this.open(path)
      return null
    })
  }

  private promptRename (li: HTMLElement, path: string): void {
    this.inlineInput(li, path, (to) => {
      const r = renameFile(this.provider.doc, path, to)
      return r.ok ? null : r.reason
    })
  }

  private refreshCursors (): void {
    const self = this.provider.doc.clientID
    const byClient = new Map<number, { name: string; color: string }>()
    for (const p of this.provider.participants.values()) if (p.doc_client_id !== undefined) byClient.set(p.doc_client_id, p)
    const states = this.provider.awareness.getStates()
    for (const [path, ed] of this.editors) ed.setCursors(remoteCursors(states, self, path, id => byClient.get(id)))
  }

  private schedulePublish (): void {
    if (this.publishTimer !== null) return
    const wait = Math.max(0, this.lastPublish + CURSOR_PUBLISH_INTERVAL_MS - Date.now())
    this.publishTimer = setTimeout(() => {
      this.publishTimer = null
      this.lastPublish = Date.now()
      this.publishLocal()
    }, wait)
  }

  /** Our awareness state: who we are, where our cursor is, what we look at. */
  private publishLocal (): void {
    const p = this.provider
    const ed = this.active ? this.editors.get(this.active) : undefined
    const state: Record<string, unknown> = { user: { name: p.name, color: p.identity.color } }
    if (this.following !== null) state.following = this.following
    if (ed) {
      const sel = ed.view.state.selection
      state.cursor = cursorState(ed.path, sel.ranges, sel.mainIndex)
      const [start, end] = ed.shownLines()
      state.view = { path: ed.path, start_line: start, end_line: end }
    } else {
      state.cursor = null
      state.view = null
    }
    // An edit, ours or someone else's, schedules a publication, yet often leaves what we
    // publish as it was (someone typed after our cursor). Sending it anyway would cost every
    // page in the room a message and a redraw per keystroke; y-protocols renews a state
    // that has not changed by itself, so nobody times us out.
    const published = JSON.stringify(state)
    if (published === this.published && p.awareness.getLocalState() !== null) return
    this.published = published
    p.awareness.setLocalState(state)
  }
}
