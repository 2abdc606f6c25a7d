/**
 * The debug panel in the dock: the room's shared debug session. Start it on the file in
 * front (or join the one someone started), then continue, step, pause and stop; the threads,
 * the call stack (a click opens the frame's file at its line), the selected frame's
 * variables (expanded lazily), an evaluate box, and the program's output. Readers inspect
 * only: the controls are disabled with the reason, and the hub refuses them anyway.
 *
 * The state lives in {@link DebugSession} (no DOM); breakpoints in {@link BreakpointStore},
 * shown in each editor's gutter by editor/breakpoints.ts, for which this panel is the host.
 */
import type { MeshProvider } from '../net/provider.js'
import type { Workspace } from '../ui/workspace.js'
import type { Dock } from '../ui/dock.js'
import type { Shortcuts } from '../ui/shortcuts.js'
import { h, fill } from '../ui/dom.js'
import { EditorView } from '@codemirror/view'
import { languageOf } from '../editor/languages.js'
import { setBreakpointHost, setBreakpointMarks } from '../editor/breakpoints.js'
import { BreakpointStore } from './breakpointStore.js'
import { DebugSession, MAX_EXPRESSION_CHARS, type Frame } from './session.js'
import type { Variable } from './dap.js'

/** Evaluate results kept in the panel, newest first. */
const MAX_EVAL_RESULTS = 20

/** Where the page keeps the user's wish to join others' sessions without being asked. */
const AUTO_JOIN_KEY = 'mesh.debug.autoJoin'

const READER_REASON = 'You are a reader here (read-only): you can inspect the program (threads, stack, variables) but not start, step, continue, evaluate or set breakpoints.'

type Button = HTMLButtonElement

export class DebugPanel {
  readonly el: HTMLElement
  readonly session: DebugSession
  private readonly store = new BreakpointStore()
  private readonly status: HTMLElement
  private readonly reason: HTMLElement
  private readonly buttons: Record<'start' | 'join' | 'continue' | 'pause' | 'next' | 'stepIn' | 'stepOut' | 'stop' | 'leave', Button>
  private readonly autoJoin: HTMLInputElement
  private readonly threadsEl: HTMLElement
  private readonly stackEl: HTMLElement
  private readonly varsEl: HTMLElement
  private readonly evalInput: HTMLInputElement
  private readonly evalList: HTMLElement
  private readonly outputEl: HTMLElement
  /** Variables the user opened, by their place (`scope/name/child`): they open again after
   * the next stop, as in editors. */
  private readonly expanded = new Set<string>()
  private shownScopes: unknown = null
  private shownFrames: unknown = null
  private shownOutput = ''

  constructor (
    readonly provider: MeshProvider,
    readonly workspace: Workspace,
    readonly dock: Dock,
    readonly shortcuts: Shortcuts,
    readonly notify: (text: string) => void,
  ) {
    this.session = new DebugSession(
      { send: (m) => provider.send(m), connId: () => provider.connId, role: () => provider.role },
      this.store,
      notify,
      (frame) => this.onStop(frame),
    )
    const button = (label: string, testid: string, title: string, run: () => void): Button => {
      const b = h('button', { type: 'button', class: 'small', 'data-testid': `debug-${testid}`, title }, label)
      b.addEventListener('click', run)
      return b
    }
    const s = this.session
    this.buttons = {
      start: button('▶ Start', 'start', 'Debug the file in front (F5)', () => this.start()),
      join: button('Join', 'join', 'Join the room\'s debug session', () => s.join()),
      continue: button('Continue', 'continue', 'Continue (F5)', () => void s.control('continue')),
      pause: button('Pause', 'pause', 'Pause', () => void s.control('pause')),
      next: button('Step over', 'next', 'Step over (F10)', () => void s.control('next')),
      stepIn: button('Step in', 'step-in', 'Step into (F11)', () => void s.control('stepIn')),
      stepOut: button('Step out', 'step-out', 'Step out (Shift+F11)', () => void s.control('stepOut')),
      stop: button('■ Stop', 'stop', 'End the session for everyone (Shift+F5)', () => void s.stop()),
      leave: button('Leave', 'leave', 'Leave the session; it goes on for the others', () => void s.leave()),
    }
    this.autoJoin = h('input', { type: 'checkbox', 'data-testid': 'debug-autojoin' })
    this.autoJoin.checked = storedAutoJoin()
    s.autoJoin = this.autoJoin.checked
    this.autoJoin.addEventListener('change', () => {
      s.autoJoin = this.autoJoin.checked
      try { localStorage.setItem(AUTO_JOIN_KEY, String(s.autoJoin)) } catch { /* private mode */ }
    })
    this.status = h('span', { class: 'debug-status', 'data-testid': 'debug-status', role: 'status' })
    this.reason = h('p', { class: 'debug-reason', 'data-testid': 'debug-reason', hidden: true })
    this.threadsEl = h('ul', { class: 'debug-threads', 'data-testid': 'debug-threads' })
    this.stackEl = h('ol', { class: 'debug-stack', 'data-testid': 'debug-stack' })
    this.varsEl = h('div', { class: 'debug-vars', 'data-testid': 'debug-variables' })
    this.evalInput = h('input', { class: 'debug-eval', 'data-testid': 'debug-eval-input', placeholder: 'Evaluate in the selected frame, then Enter', maxlength: MAX_EXPRESSION_CHARS, spellcheck: 'false' })
    this.evalInput.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' || !this.evalInput.value.trim()) return
      e.preventDefault()
      void this.evaluate(this.evalInput.value.trim())
    })
    this.evalList = h('ul', { class: 'debug-eval-results', 'data-testid': 'debug-eval-results' })
    this.outputEl = h('pre', { class: 'debug-output', 'data-testid': 'debug-output' })
    const b = this.buttons
    this.el = h('section', { class: 'dock-panel debug', 'data-testid': 'debug-panel' },
      h('div', { class: 'debug-bar' },
        b.start, b.join, b.continue, b.pause, b.next, b.stepIn, b.stepOut, b.stop, b.leave,
        this.status,
        h('label', { class: 'debug-autojoin', title: 'Join when someone starts a session' }, this.autoJoin, 'join others\' sessions')),
      this.reason,
      h('div', { class: 'debug-cols' },
        h('div', { class: 'debug-col' }, h('h3', {}, 'Threads'), this.threadsEl, h('h3', {}, 'Call stack'), this.stackEl),
        h('div', { class: 'debug-col' }, h('h3', {}, 'Variables'), this.varsEl),
        h('div', { class: 'debug-col' }, h('h3', {}, 'Evaluate'), this.evalInput, this.evalList, h('h3', {}, 'Output'), this.outputEl)))

    setBreakpointHost({
      marks: (path) => this.store.marks(path),
      toggle: (path, line) => s.toggleBreakpoint(path, line),
      moved: (path, lines) => s.breakpointsMoved(path, lines),
    })
    this.store.onChange((path) => {
      const view = workspace.editorOf(path)?.view
      view?.dispatch({ effects: setBreakpointMarks.of(this.store.marks(path)) })
    })
    provider.on('message', (m) => {
      s.receive(m)
      // Someone else started debugging: the panel shows the offer to join.
      if (m.type === 'debug_started' && m.by !== provider.connId && s.phase.kind === 'offered') {
        dock.reveal('debug')
        dock.mark('debug', true)
      }
    })
    provider.on('error', (e) => s.refused(e.respondingTo, e.message))
    provider.on('status', (st) => { if (st.state !== 'connected' && st.state !== 'connecting') s.disconnected() })
    provider.on('welcome', () => { s.reconnected(); this.render() })
    provider.on('role', () => this.render())
    s.onChange(() => this.render())
    workspace.onActiveChange(() => this.render())
    this.addShortcuts()
    this.render()
  }

  private start (): void {
    const path = this.workspace.activePath()
    if (!path) {
      this.notify('Open the file to debug first: Start debugs the file in front.')
      return
    }
    this.session.start(path, languageOf(path)?.id)
  }

  private addShortcuts (): void {
    const s = this.session
    const attached = () => s.phase.kind === 'attached'
    this.shortcuts.add({
      keys: 'F5',
      label: 'Debug: start, join, or continue',
      inInputs: true,
      run: () => {
        // Always taken: F5 would otherwise reload the page.
        if (attached()) {
          if (s.stopped) void s.control('continue')
        } else if (s.phase.kind === 'offered') s.join()
        else if (s.phase.kind === 'idle') this.start()
      },
    })
    this.shortcuts.add({ keys: 'Shift+F5', label: 'Debug: stop (or leave)', inInputs: true, run: () => { if (!attached()) return false; void (s.canEnd() ? s.stop() : s.leave()) } })
    this.shortcuts.add({ keys: 'F10', label: 'Debug: step over', inInputs: true, run: () => { if (!attached()) return false; void s.control('next') } })
    this.shortcuts.add({ keys: 'F11', label: 'Debug: step into', inInputs: true, run: () => { if (!attached()) return false; void s.control('stepIn') } })
    this.shortcuts.add({ keys: 'Shift+F11', label: 'Debug: step out', inInputs: true, run: () => { if (!attached()) return false; void s.control('stepOut') } })
    this.shortcuts.add({
      keys: 'F9',
      label: 'Debug: toggle a breakpoint at the caret',
      inInputs: true,
      run: () => {
        const path = this.workspace.activePath()
        const view = path ? this.workspace.editorOf(path)?.view : undefined
        if (!path || !view) return false
        s.toggleBreakpoint(path, view.state.doc.lineAt(view.state.selection.main.head).number)
      },
    })
  }

  /** A new stop: the dock shows the debugger, the editor the stopped line. */
  private onStop (frame: Frame | null): void {
    this.dock.reveal('debug')
    this.dock.mark('debug', true)
    if (frame?.roomPath) this.show(frame.roomPath, frame.line, false)
  }

  /** Opens `path` at `line` (1-based). */
  private show (path: string, line: number, focus: boolean): void {
    if (!this.workspace.paths().includes(path)) return
    const active = document.activeElement
    this.workspace.open(path)
    const view = this.workspace.editorOf(path)?.view
    if (!view) return
    if (line >= 1 && line <= view.state.doc.lines) {
      view.dispatch({ effects: EditorView.scrollIntoView(view.state.doc.line(line).from, { y: 'center' }) })
    }
    // Opening a file focuses its editor; a stop seen by everyone must not take the keyboard
    // from someone typing elsewhere (the evaluate box, chat).
    if (!focus && active instanceof HTMLElement && active !== document.body && !active.closest('.cm-editor')) active.focus()
  }

  private async evaluate (expression: string): Promise<void> {
    const row = h('li', { class: 'pending' }, h('code', {}, expression), ' = …')
    this.evalList.prepend(row)
    while (this.evalList.children.length > MAX_EVAL_RESULTS) this.evalList.lastElementChild?.remove()
    try {
      const v = await this.session.evaluate(expression)
      fill(row, this.variableRow(`eval/${expression}`, { ...v, name: expression }))
      row.className = ''
    } catch (e) {
      fill(row, h('code', {}, expression), h('span', { class: 'problem' }, ` ${e instanceof Error ? e.message : String(e)}`))
      row.className = 'failed'
    }
    this.evalInput.value = ''
  }

  private render (): void {
    const s = this.session
    const p = s.phase
    const b = this.buttons
    const canControl = s.canControl()
    const attached = p.kind === 'attached'
    const stopped = attached && s.stopped !== null
    const who = (conn: number) => (conn === this.provider.connId ? 'you' : this.provider.participants.get(conn)?.name ?? 'someone')

    b.start.hidden = p.kind !== 'idle'
    b.start.disabled = !canControl || !this.workspace.activePath()
    b.join.hidden = p.kind !== 'offered'
    for (const k of ['continue', 'next', 'stepIn', 'stepOut'] as const) {
      b[k].hidden = !attached
      b[k].disabled = !canControl || !stopped
    }
    b.pause.hidden = !attached || stopped
    b.pause.disabled = !canControl
    b.stop.hidden = !attached
    b.stop.disabled = !s.canEnd()
    b.stop.title = s.canEnd() ? 'End the session for everyone (Shift+F5)' : 'Only who started this session, or the host, can end it; Leave detaches you'
    b.leave.hidden = !attached
    this.evalInput.disabled = !attached || !canControl
    this.reason.hidden = canControl || this.provider.role === null
    this.reason.textContent = READER_REASON
    for (const btn of [b.start, b.continue, b.pause, b.next, b.stepIn, b.stepOut]) {
      if (!canControl && this.provider.role !== null) btn.title = READER_REASON
    }

    let status: string
    switch (p.kind) {
      case 'idle': {
        const end = s.ended
        const ended = end ? (end.error ? `The debug session ended: ${end.error}. ` : `The debug session ended (exit code ${end.exitCode ?? 'unknown'}). `) : ''
        status = `${ended}${canControl ? 'Set breakpoints in the gutter, then Start (F5) debugs the file in front.' : 'No debug session is going.'}`
        break
      }
      case 'offered': status = `${who(p.by)} started debugging ${p.path}: Join to follow along.`; break
      case 'starting': status = p.path ? `Starting the debugger on ${p.path}…` : 'Joining the debug session…'; break
      case 'attached': {
        const at = s.frames.find(f => f.id === s.frameId)
        if (s.ended) status = s.ended.error ? `Ending: ${s.ended.error}` : `The program exited (code ${s.ended.exitCode ?? 'unknown'}).`
        else if (s.stopped) status = `Paused (${s.stopped.reason})${at ? ` in ${at.name} at ${at.roomPath ?? at.path ?? '?'}:${at.line}` : ''}`
        else status = `Running ${p.path} (started by ${who(p.by)})`
        break
      }
    }
    this.status.textContent = status
    this.status.dataset.phase = p.kind
    this.status.dataset.state = attached ? (s.stopped ? 'stopped' : 'running') : p.kind
    this.el.dataset.phase = p.kind
    if (s.ended && p.kind === 'idle') this.el.dataset.ended = s.ended.error ? 'error' : `exit-${s.ended.exitCode ?? 'unknown'}`
    else delete this.el.dataset.ended

    fill(this.threadsEl, ...s.threads.map(t => h('li', { class: t.id === s.threadId ? 'active' : '' }, `${t.name}${t.id === s.stopped?.threadId ? ` (paused: ${s.stopped.reason})` : ''}`)))
    if (this.shownFrames !== s.frames || this.stackEl.dataset.selected !== String(s.frameId)) {
      this.shownFrames = s.frames
      this.stackEl.dataset.selected = String(s.frameId)
      fill(this.stackEl, ...s.frames.map(f => this.frameRow(f, f.id === s.frameId)),
        s.framesCut ? h('li', { class: 'muted' }, 'more frames not shown') : null)
    }
    const loaded = s.scopes.map(x => (x.variables ? 1 : 0)).join('')
    if (this.shownScopes !== s.scopes || this.varsEl.dataset.loaded !== loaded) {
      this.shownScopes = s.scopes
      this.varsEl.dataset.loaded = loaded
      this.renderVariables()
    }
    if (this.shownOutput !== s.output) {
      this.shownOutput = s.output
      this.outputEl.textContent = s.output
      this.outputEl.scrollTop = this.outputEl.scrollHeight
    }
  }

  private frameRow (f: Frame, selected: boolean): HTMLElement {
    const where = f.roomPath ?? (f.path ? f.path.split('/').pop() : null)
    const row = h('button', { type: 'button', class: selected ? 'frame active' : 'frame', 'data-frame-id': f.id, 'data-path': f.roomPath ?? '', 'data-line': f.line, title: f.path ?? '' },
      h('span', { class: 'frame-name' }, f.name), h('span', { class: 'frame-where' }, where ? `${where}:${f.line}` : 'no source'))
    row.addEventListener('click', () => {
      void this.session.selectFrame(f.id)
      if (f.roomPath) this.show(f.roomPath, f.line, true)
    })
    return h('li', {}, row)
  }

  private renderVariables (): void {
    const s = this.session
    fill(this.varsEl, ...s.scopes.map(sv => {
      const key = `scope/${sv.scope.name}`
      const body = h('ul', { class: 'debug-var-list' })
      const head = h('details', { class: 'debug-scope', 'data-scope': sv.scope.name }, h('summary', {}, sv.scope.name), body)
      if (sv.variables) {
        fill(body, ...sv.variables.map(v => h('li', {}, this.variableRow(`${key}/${v.name}`, v))), sv.cut ? h('li', { class: 'muted' }, 'more not shown') : null)
      } else if (sv.error) {
        fill(body, h('li', { class: 'problem' }, sv.error))
      }
      const open = !sv.scope.expensive || this.expanded.has(key)
      head.open = open
      // Expensive scopes (globals, often) are fetched when opened, once.
      let fetched = !sv.scope.expensive || !!sv.variables || sv.scope.variablesReference <= 0
      const fetch = () => {
        if (fetched) return
        fetched = true
        void this.loadChildren(body, key, sv.scope.variablesReference)
      }
      head.addEventListener('toggle', () => {
        if (head.open) {
          this.expanded.add(key)
          fetch()
        } else this.expanded.delete(key)
      })
      if (open && sv.scope.expensive) fetch()
      return head
    }))
  }

  /** One variable: `name = value`, and a toggle that fetches its children when it has some. */
  private variableRow (key: string, v: Variable): HTMLElement {
    const label = h('span', { class: 'var' },
      h('span', { class: 'var-name' }, v.name), ' = ', h('span', { class: 'var-value' }, v.value),
      v.type ? h('span', { class: 'var-type' }, ` ${v.type}`) : null)
    if (v.variablesReference <= 0) return h('div', { class: 'var-row', 'data-name': v.name }, h('span', { class: 'var-toggle leaf' }), label)
    const children = h('ul', { class: 'debug-var-list', hidden: true })
    const toggle = h('button', { type: 'button', class: 'var-toggle', 'aria-expanded': 'false', title: `Show what ${v.name} holds` }, '▸')
    const row = h('div', { class: 'var-row', 'data-name': v.name }, toggle, label, children)
    const setOpen = (open: boolean) => {
      toggle.textContent = open ? '▾' : '▸'
      toggle.setAttribute('aria-expanded', String(open))
      children.hidden = !open
      if (open) {
        this.expanded.add(key)
        void this.loadChildren(children, key, v.variablesReference)
      } else this.expanded.delete(key)
    }
    toggle.addEventListener('click', () => setOpen(children.hidden))
    if (this.expanded.has(key)) setOpen(true)
    return row
  }

  private async loadChildren (into: HTMLElement, key: string, ref: number): Promise<void> {
    fill(into, h('li', { class: 'muted' }, 'loading…'))
    try {
      const { items, cut } = await this.session.variables(ref)
      fill(into, ...items.map(c => h('li', {}, this.variableRow(`${key}/${c.name}`, c))), cut ? h('li', { class: 'muted' }, 'more not shown') : null,
        items.length === 0 ? h('li', { class: 'muted' }, 'empty') : null)
    } catch (e) {
      fill(into, h('li', { class: 'problem' }, e instanceof Error ? e.message : String(e)))
    }
  }
}

function storedAutoJoin (): boolean {
  try {
    return localStorage.getItem(AUTO_JOIN_KEY) === 'true'
  } catch {
    return false
  }
}
