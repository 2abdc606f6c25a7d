/**
 * The ghost's panel: its requests with their progress (Cancel for writers), its pending
 * suggestions as a diff per file (Accept / Reject for writers), and an Ask box that sends the
 * question with the current editor selection. Readers see it read-only and may ask for
 * explanations. Everything goes as typed `ghost` messages; the server checks the role again,
 * and the ghost answers in chat as well, so nothing here is the only way to see it.
 */
import type { MeshProvider } from '../net/provider.js'
import { MAX_CHAT_BYTES, utf8Length, type GhostCommand, type GhostMode, type GhostRequest, type GhostSuggestion, type Role } from '../net/messages.js'
import { GhostBoard, diffEdit } from '../room/ghost.js'
import type { Workspace } from './workspace.js'
import { h, fill } from './dom.js'

/** The longest selection text sent with a request (`MAX_GHOST_SELECTION_BYTES`); a larger
 * selection goes as its lines only, and the ghost reads them from the room. */
const MAX_SELECTION_BYTES = 16 * 1024

const canWrite = (role: Role | null) => role === 'writer' || role === 'host'

export class GhostPanel {
  readonly el: HTMLElement
  private readonly board = new GhostBoard()
  private readonly body: HTMLElement
  private readonly mode: HTMLSelectElement
  private readonly withSelection: HTMLInputElement

  constructor (private readonly provider: MeshProvider, private readonly workspace: Workspace, private readonly notify: (text: string) => void) {
    this.body = h('div', { class: 'ghost-body', 'data-testid': 'ghost-body' })
    const input = h('textarea', { rows: 2, placeholder: 'Ask the ghost (Enter sends)', 'data-testid': 'ghost-input', maxlength: MAX_CHAT_BYTES })
    this.mode = h('select', { 'data-testid': 'ghost-mode', title: 'How the ghost answers' })
    this.withSelection = h('input', { type: 'checkbox', checked: true, 'data-testid': 'ghost-with-selection' })
    const form = h('form', { class: 'ghost-ask', 'data-testid': 'ghost-ask' }, input,
      h('div', { class: 'row' }, this.mode,
        h('label', { class: 'small', title: 'Send the lines selected in the editor as context' }, this.withSelection, ' with my selection'),
        h('button', { type: 'submit' }, 'Ask')))
    const ask = () => {
      const text = input.value.trim()
      if (!text) return
      if (utf8Length(text) > MAX_CHAT_BYTES) {
        this.notify(`a request may have at most ${MAX_CHAT_BYTES} bytes; this one has ${utf8Length(text)}`)
        return
      }
      const command: GhostCommand = { kind: 'ask', text, mode: this.mode.value as GhostMode }
      const selection = this.withSelection.checked ? this.workspace.selection() : null
      if (selection) {
        command.selection = utf8Length(selection.text) > MAX_SELECTION_BYTES
          ? { path: selection.path, start_line: selection.start_line, end_line: selection.end_line }
          : selection
      }
      if (this.command(command)) input.value = ''
    }
    form.addEventListener('submit', (e) => { e.preventDefault(); ask() })
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); ask() }
    })
    this.el = h('section', { class: 'panel ghost', 'data-testid': 'ghost-panel' }, h('h2', {}, 'Ghost'), this.body, form)
    provider.on('message', (msg) => {
      if (msg.type === 'ghost_state') {
        this.board.set(msg.from, msg.state)
        this.render()
      }
    })
    provider.on('left', (who) => { if (this.board.left(who.conn_id)) this.render() })
    // A new connection gets the ghosts' states again right after its welcome; the old
    // connection's view of them (ids included) is stale.
    provider.on('welcome', () => { this.board.clear(); this.render() })
    provider.on('participants', () => this.render())
    provider.on('role', () => { this.setModes(); this.render() })
    this.setModes()
    this.render()
  }

  /** Readers may only ask for explanations; writers choose, suggesting by default. */
  private setModes (): void {
    const writer = canWrite(this.provider.role)
    const modes: Array<[GhostMode, string]> = writer
      ? [['suggest', 'Suggest a change'], ['write', 'Write it in'], ['explain', 'Explain only']]
      : [['explain', 'Explain only']]
    fill(this.mode, ...modes.map(([v, label]) => h('option', { value: v }, label)))
  }

  private command (command: GhostCommand): boolean {
    if (this.provider.send({ type: 'ghost', command }) === null) {
      this.notify('not connected: the ghost was not asked; try again once the status says connected')
      return false
    }
    return true
  }

  private button (label: string, testid: string, command: GhostCommand): HTMLButtonElement {
    const b = h('button', { type: 'button', class: 'small', 'data-testid': testid }, label)
    b.addEventListener('click', () => { this.command(command) })
    return b
  }

  private render (): void {
    const writer = canWrite(this.provider.role)
    const ghosts = this.board.all()
    const present = [...this.provider.participants.values()].some(p => p.client === 'mesh-ghost')
    if (ghosts.length === 0) {
      fill(this.body, h('p', { class: 'note', 'data-testid': 'ghost-none' }, present
        ? 'The ghost is here: ask it below or with "@ghost ..." in chat.'
        : 'No ghost in this room yet: someone starts one with mesh-ghost (see the README).'))
      return
    }
    fill(this.body, ...ghosts.map(([from, state]) => {
      const name = this.provider.participants.get(from)?.name ?? `connection ${from}`
      return h('div', { class: 'ghost-of', 'data-from': String(from) },
        h('div', { class: 'ghost-name' }, name, writer && this.button('Undo its last change', 'ghost-undo', { kind: 'undo' })),
        state.requests.length > 0 && h('ol', { class: 'ghost-requests', 'data-testid': 'ghost-requests' },
          ...[...state.requests].reverse().map(r => this.request(r, writer))),
        state.suggestions.length > 0 && h('ol', { class: 'ghost-suggestions', 'data-testid': 'ghost-suggestions' },
          ...state.suggestions.map(s => this.suggestion(s, writer))))
    }))
  }

  private request (r: GhostRequest, writer: boolean): HTMLElement {
    const progress = r.status === 'working'
      ? (r.received_chars > 0 ? `working (${r.received_chars} characters so far)` : 'working')
      : r.status
    return h('li', { 'data-id': String(r.id), 'data-status': r.status, class: `status-${r.status}` },
      h('span', { class: 'what' }, `#${r.id} ${r.asker} · ${r.mode}: ${r.text}`),
      h('span', { class: 'progress', 'data-testid': 'ghost-progress' }, ` — ${progress}`),
      r.message && h('span', { class: 'message' }, ` (${r.message})`),
      writer && r.status === 'working' && this.button('Cancel', 'ghost-cancel', { kind: 'cancel', request: r.id }))
  }

  private suggestion (s: GhostSuggestion, writer: boolean): HTMLElement {
    return h('li', { 'data-id': String(s.id), 'data-testid': `ghost-suggestion-${s.id}` },
      h('div', { class: 'head' }, `Suggestion #${s.id} for ${s.asker}: ${s.files.join(', ')}`),
      s.omitted
        ? h('p', { class: 'note' }, 'Too large to show here: the whole answer is in chat.')
        : h('div', { class: 'diffs' }, ...s.edits.map(e => h('div', { class: 'ghost-diff', 'data-path': e.path },
          h('div', { class: 'file' }, e.search === '' ? `${e.path} (added at the end, or a new file)` : e.path),
          h('pre', {}, ...diffEdit(e).map(l => h('div', { class: l.op === '-' ? 'del' : l.op === '+' ? 'add' : 'ctx' }, `${l.op} ${l.text}`)))))),
      writer && h('div', { class: 'row' },
        this.button('Accept', 'ghost-accept', { kind: 'accept', suggestion: s.id }),
        this.button('Reject', 'ghost-reject', { kind: 'reject', suggestion: s.id })))
  }
}
