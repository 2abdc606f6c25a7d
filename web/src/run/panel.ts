/**
 * The run panel in the dock: run the file in front (on the server, or for JavaScript and
 * Python in this browser), watch every run of the room as it happens with who started it,
 * type into a run's stdin, stop it, and look back at the room's past runs with their output.
 *
 * The rules (who may start, stop, type; how a run stands; the bounds on what is kept) are in
 * `model/runs.ts`, without DOM; this file draws them. Output goes to an xterm.js terminal
 * (`terminal.ts`) and to nothing else: server text never becomes HTML.
 */
import type { MeshProvider, ConnectionStatus } from '../net/provider.js'
import type { ServerMessage } from '../net/messages.js'
import type { Workspace } from '../ui/workspace.js'
import type { Dock } from '../ui/dock.js'
import type { Shortcuts } from '../ui/shortcuts.js'
import { h, fill } from '../ui/dom.js'
import { showKeys } from '../ui/shortcuts.js'
import { filePaths, fileText } from '../room/files.js'
import { ROOM_ID } from '../room/links.js'
import { LANGUAGES } from '../editor/languages.js'
import { canRunLocally, runLocally, type LocalRun } from './local.js'
import {
  RunBook, canStart, canStop, canType, statusText, unavailableReason, whyNoStart,
  type Chunk, type Run, type RunChange,
} from './model/runs.js'
import { MAX_HISTORY_BYTES, readHistory } from './model/history.js'
import { TrueColorFilter } from './model/ansi.js'
import { LineEditor, pieces } from './model/stdin.js'
import { TerminalView } from './terminal.js'

/** The shortcut that runs the file in front. */
export const RUN_KEYS = 'Mod+Enter'
/** The shortcut that stops the run shown: Shift added to Run's own key, as VS Code's Shift+F5
 * stops what F5 started; Ctrl+C in the terminal stops it too, as in a console. */
export const STOP_KEYS = 'Mod+Shift+Enter'

/** The most languages the page takes from `/api/languages` (the registry has eight). */
const MAX_LANGUAGES = 100

/** A language runs can use (`GET /api/languages`). */
interface LanguageInfo { id: string; name: string; extensions: string[] }

type Where = 'server' | 'browser'

/** The Run tab of the dock (mounted by `ui/room.ts`). */
export class RunPanel {
  readonly el: HTMLElement
  private readonly book = new RunBook()
  /** This page's `run` requests waiting for their answer: request id → entry file. */
  private readonly requests = new Map<number, string>()
  private languages: LanguageInfo[] = LANGUAGES.map(l => ({ id: l.id, name: l.name, extensions: [...l.extensions] }))
  private selected: string | null = null
  private terminal: TerminalView | null = null
  private filter = new TrueColorFilter()
  private readonly lineEditor = new LineEditor()
  private readonly localRuns = new Map<string, LocalRun>()
  /** Runs in this browser that Stop was pressed for. */
  private readonly stoppingLocal = new Set<string>()
  /** Set when the server said it cannot run programs (no Docker): its words. */
  private unavailable: string | null = null
  private problem: string | null = null
  private wasLost = false
  private languageOptions = ''
  /** The terminal's output so far ended with a newline (or there is none). */
  private atLineStart = true

  private readonly runButton: HTMLButtonElement
  private readonly stopButton: HTMLButtonElement
  private readonly fileLabel: HTMLElement
  private readonly languageSelect: HTMLSelectElement
  private readonly whereSelect: HTMLSelectElement
  private readonly note: HTMLElement
  private readonly list: HTMLElement
  private readonly runTitle: HTMLElement
  private readonly runStatus: HTMLElement
  private readonly termHost: HTMLElement
  private readonly stdinInput: HTMLInputElement
  private readonly sendButton: HTMLButtonElement
  private readonly eofButton: HTMLButtonElement

  constructor (
    readonly provider: MeshProvider,
    readonly workspace: Workspace,
    readonly dock: Dock,
    readonly shortcuts: Shortcuts,
    readonly notify: (text: string) => void,
  ) {
    this.runButton = h('button', { type: 'button', class: 'run-start', 'data-testid': 'run-button', title: `Run the file in front (${showKeys(RUN_KEYS)})` }, '▶ Run')
    this.stopButton = h('button', { type: 'button', class: 'run-stop', 'data-testid': 'stop-button', title: `Stop the run shown (${showKeys(STOP_KEYS)})`, disabled: true }, '■ Stop')
    this.fileLabel = h('span', { class: 'run-file', 'data-testid': 'run-file' })
    this.languageSelect = h('select', { 'data-testid': 'run-language', title: 'The language to run the file as' })
    this.whereSelect = h('select', { 'data-testid': 'run-where', title: 'Where the program runs' },
      h('option', { value: 'server' }, 'on the server'),
      h('option', { value: 'browser' }, 'in this browser'))
    this.note = h('div', { class: 'run-note', 'data-testid': 'run-note', role: 'status', hidden: true })
    this.list = h('ul', { class: 'run-list', 'data-testid': 'run-list', 'aria-label': 'Runs of the room' })
    this.runTitle = h('span', { class: 'run-title', 'data-testid': 'run-title' })
    this.runStatus = h('span', { class: 'run-status', 'data-testid': 'run-status' })
    this.termHost = h('div', { class: 'run-terminal', 'data-testid': 'run-terminal' })
    this.stdinInput = h('input', { class: 'run-stdin', 'data-testid': 'run-stdin', disabled: true, spellcheck: 'false', autocomplete: 'off', placeholder: 'Input for the program: Enter sends the line' })
    this.sendButton = h('button', { type: 'button', class: 'small', 'data-testid': 'run-send', disabled: true }, 'Send')
    this.eofButton = h('button', { type: 'button', class: 'small', 'data-testid': 'run-eof', disabled: true, title: 'Send what is typed and close the program\'s input (Ctrl+D)' }, 'EOF')

    this.el = h('section', { class: 'dock-panel run', 'data-testid': 'run-panel' },
      h('div', { class: 'run-bar' },
        this.runButton, this.stopButton, this.fileLabel,
        h('label', { class: 'run-field' }, 'language', this.languageSelect),
        h('label', { class: 'run-field' }, 'where', this.whereSelect)),
      this.note,
      h('div', { class: 'run-body' },
        this.list,
        h('div', { class: 'run-view' },
          h('div', { class: 'run-head' }, this.runTitle, this.runStatus),
          this.termHost,
          h('div', { class: 'run-input' }, this.stdinInput, this.sendButton, this.eofButton))))
    // For the end-to-end suite, as the editors expose theirs (`meshEditor`).
    Object.assign(this.el, { meshRuns: { list: () => this.book.list().map(summary), output: (id: string) => this.book.get(id)?.chunks.map(c => c.data).join('') ?? null } })

    this.runButton.addEventListener('click', () => this.runFileInFront())
    this.stopButton.addEventListener('click', () => this.stopShown())
    this.languageSelect.addEventListener('change', () => this.renderControls())
    this.whereSelect.addEventListener('change', () => this.renderControls())
    this.stdinInput.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); this.sendLine(false) }
      if (e.key === 'd' && e.ctrlKey) { e.preventDefault(); this.sendLine(true) }
    })
    this.sendButton.addEventListener('click', () => this.sendLine(false))
    this.eofButton.addEventListener('click', () => this.sendLine(true))

    shortcuts.add({ keys: RUN_KEYS, label: 'Run the file in front', run: () => { this.runFileInFront(); return true }, inInputs: true })
    shortcuts.add({ keys: STOP_KEYS, label: 'Stop the run shown in the run panel', run: () => this.stopShown(), inInputs: true })

    provider.on('message', (m) => this.onMessage(m))
    provider.on('welcome', () => this.renderAll())
    // The host may change our role at any time: Run, Stop and stdin follow it at once.
    provider.on('role', () => this.renderAll())
    provider.on('status', (s) => this.onStatus(s))
    provider.on('participants', () => this.renderList())
    workspace.onActiveChange(() => this.renderControls())

    this.renderAll()
    void this.loadLanguages()
    // Past runs are the room's: a page waiting in the lobby asks for them only once let in.
    const offWelcome = provider.on('welcome', () => { offWelcome(); void this.loadHistory() })
    TerminalView.open(this.termHost, (data) => this.onTerminalData(data))
      .then((t) => { this.terminal = t; this.redraw() })
      .catch((e) => this.showProblem(`The terminal could not load: ${e instanceof Error ? e.message : String(e)}. Reload the page.`))
  }

  // --- starting and stopping ---------------------------------------------------------------

  /** The language the file in front runs as: the one picked, else the file's extension. */
  private languageOf (path: string | null): LanguageInfo | undefined {
    const picked = this.languageSelect.value
    if (picked) return this.languages.find(l => l.id === picked)
    return path ? autoLanguage(path, this.languages) : undefined
  }

  private where (): Where {
    return this.whereSelect.value === 'browser' ? 'browser' : 'server'
  }

  private runFileInFront (): void {
    const why = whyNoStart(this.provider.role)
    if (why) { this.showProblem(why); return }
    const path = this.workspace.activePath()
    if (!path) { this.showProblem('Open the file to run first: the panel runs the file in front.'); return }
    const lang = this.languageOf(path)
    if (this.where() === 'browser') {
      if (!lang || !canRunLocally(lang.id)) {
        this.showProblem(`${lang?.name ?? 'This file'} cannot run in this browser: only JavaScript and Python can. Pick "on the server".`)
        return
      }
      this.runInBrowser(path, lang.id)
      return
    }
    if (!lang) { this.showProblem(`No language runs ${path}: pick one in "language".`); return }
    const id = this.provider.send({ type: 'run', path, ...(this.languageSelect.value ? { language: this.languageSelect.value } : {}) })
    if (id === null) { this.showProblem('Not connected to the room: the run was not sent. Try again once the status says connected.'); return }
    this.requests.set(id, path)
    this.showProblem(null)
  }

  private runInBrowser (path: string, language: 'javascript' | 'python'): void {
    const files = new Map<string, string>()
    for (const p of filePaths(this.provider.doc)) {
      const t = fileText(this.provider.doc, p)
      if (t) files.set(p, t.toString())
    }
    const run = this.book.startLocal(path, language, 'you')
    this.onChanges([{ kind: 'added', run }])
    const io = {
      stdout: (text: string) => this.onChanges(this.book.append(run.id, 'stdout', text)),
      stderr: (text: string) => this.onChanges(this.book.append(run.id, 'stderr', text)),
    }
    let local: LocalRun
    try {
      local = runLocally(language, files, path, io)
    } catch (e) {
      this.onChanges(this.book.endLocal(run.id, { stage: 'run', code: null, durationMs: 0, limit: null, error: e instanceof Error ? e.message : String(e) }))
      return
    }
    this.localRuns.set(run.id, local)
    local.done.then((end) => {
      this.localRuns.delete(run.id)
      // Stopped here, it ends as a stopped server run reads.
      const stopped = this.stoppingLocal.delete(run.id) && end.code === null && !end.error && !end.limit
      this.onChanges(this.book.endLocal(run.id, { stage: 'run', code: end.code, durationMs: end.durationMs, limit: end.limit, error: stopped ? 'stopped' : end.error ?? null }))
    }, (e: unknown) => {
      this.localRuns.delete(run.id)
      this.stoppingLocal.delete(run.id)
      this.onChanges(this.book.endLocal(run.id, { stage: 'run', code: null, durationMs: 0, limit: null, error: e instanceof Error ? e.message : String(e) }))
    })
  }

  /** Stops the run shown; false when there is nothing this page may stop. */
  private stopShown (): boolean {
    const run = this.selected ? this.book.get(this.selected) : undefined
    if (!run || !canStop(run, this.provider.role, this.provider.connId)) return false
    if (run.where === 'browser') {
      this.stoppingLocal.add(run.id)
      this.localRuns.get(run.id)?.stop()
      return true
    }
    if (this.provider.send({ type: 'stop', run_id: run.id }) === null) {
      this.showProblem('Not connected to the room: the stop was not sent. Try again once the status says connected.')
    }
    return true
  }

  // --- stdin ---------------------------------------------------------------------------------

  /** Sends the input line (and closes stdin with `eof`). */
  private sendLine (eof: boolean): void {
    const run = this.selected ? this.book.get(this.selected) : undefined
    if (!run || !canType(run, this.provider.role)) return
    const text = this.stdinInput.value + (eof ? '' : '\n')
    this.stdinInput.value = ''
    this.sendInput(run, text, eof, false)
  }

  /** Keys typed into the terminal, edited as a line until Enter (see `model/stdin.ts`). */
  private onTerminalData (data: string): void {
    const run = this.selected ? this.book.get(this.selected) : undefined
    if (!run) return
    if (!canType(run, this.provider.role)) {
      if (data === '\x03') this.stopShown()
      return
    }
    const act = this.lineEditor.feed(data)
    if (act.echo) {
      // Dimmed, as typed input is drawn when the run is drawn again.
      this.terminal?.write(`\x1b[2m${act.echo}\x1b[22m`)
      this.atLineStart = act.echo.endsWith('\n')
    }
    if (act.send.length || act.eof) this.sendInput(run, act.send.join(''), act.eof, true)
    if (act.interrupt) this.stopShown()
  }

  private sendInput (run: Run, text: string, eof: boolean, echoed: boolean): void {
    if (run.where === 'browser') {
      this.localRuns.get(run.id)?.input(text, eof)
    } else {
      const parts = pieces(text)
      if (parts.length === 0) parts.push('')
      for (let i = 0; i < parts.length; i++) {
        const last = i === parts.length - 1
        if (this.provider.send({ type: 'input', run_id: run.id, data: parts[i], ...(eof && last ? { eof: true } : {}) }) === null) {
          this.showProblem('Not connected to the room: the input was not sent.')
          return
        }
      }
    }
    if (text) this.onChanges(this.book.append(run.id, 'stdin', text), echoed)
    if (eof) this.showProblem(null)
  }

  /** Someone is typing into the run shown: it runs, and the input line or the terminal has
   * the focus or text not sent yet. */
  private typingIntoShown (): boolean {
    const run = this.selected ? this.book.get(this.selected) : undefined
    if (!run || !canType(run, this.provider.role)) return false
    const focus = document.activeElement
    return this.stdinInput.value !== '' || this.lineEditor.unsent() !== '' ||
      focus === this.stdinInput || (!!focus && this.termHost.contains(focus))
  }

  // --- what the room says ----------------------------------------------------------------

  private onMessage (msg: ServerMessage): void {
    const mine = new Set(this.requests.keys())
    const reason = unavailableReason(msg, mine)
    if (reason) this.unavailable = reason
    else if (msg.type === 'run_exited' && !msg.error) this.unavailable = null
    if ((msg.type === 'run_started' || msg.type === 'run_queued' || msg.type === 'error') && msg.responding_to !== undefined && this.requests.has(msg.responding_to)) {
      if (msg.type === 'error') this.showProblem(`The run of ${this.requests.get(msg.responding_to)} was refused: ${msg.message}`)
      this.requests.delete(msg.responding_to)
    }
    const changes = this.book.apply(msg, {
      myConn: this.provider.connId,
      nameOf: (conn) => this.provider.participants.get(conn)?.name,
    }, mine)
    this.onChanges(changes)
    if (reason || msg.type === 'error') this.renderControls()
  }

  private onStatus (s: ConnectionStatus): void {
    if (s.state === 'offline' || s.state === 'closed') {
      const changes = this.book.connectionLost()
      if (changes.length) this.wasLost = true
      this.requests.clear()
      this.onChanges(changes)
    }
    if (s.state === 'connected' && this.wasLost) {
      // The ends of runs missed while away are in the history.
      this.wasLost = false
      void this.loadHistory()
    }
    this.renderControls()
  }

  private onChanges (changes: RunChange[], echoed = false): void {
    let listChanged = false
    for (const c of changes) {
      if (c.kind === 'added') {
        listChanged = true
        // A new run of the room is shown at once (history entries only when nothing is),
        // unless someone is typing into the run shown: their Enter must reach that program.
        if (this.selected === null || (!c.run.fromHistory && !this.typingIntoShown())) this.select(c.run.id)
        if (!c.run.fromHistory) {
          this.dock.reveal('run')
          this.dock.mark('run', true)
        }
      } else if (c.kind === 'updated') {
        listChanged = true
        if (c.run.id === this.selected) {
          this.renderHead()
          if (c.run.state === 'exited') {
            this.writeEnd(c.run)
            this.lineEditor.clear()
          }
        }
      } else if (c.run.id === this.selected) {
        if (!(echoed && c.chunk.kind === 'stdin')) this.writeChunk(c.chunk)
      } else {
        this.dock.mark('run', true)
      }
    }
    if (listChanged) this.renderList()
    if (changes.length) this.renderControls()
  }

  // --- history and languages -------------------------------------------------------------

  private async loadHistory (): Promise<void> {
    const room = /^\/join\/([^/]+)\/?$/.exec(location.pathname)?.[1]
    const token = this.provider.restToken()
    if (!room || !ROOM_ID.test(room) || !token) return
    try {
      // The token goes to this page's own origin only (a relative URL).
      const r = await fetch(`/api/sessions/${room}/runs`, { headers: { authorization: `Bearer ${token}` } })
      if (!r.ok) throw new Error(`the server answered ${r.status}`)
      const text = await r.text()
      if (text.length > MAX_HISTORY_BYTES) throw new Error(`the history is over ${MAX_HISTORY_BYTES} bytes`)
      this.onChanges(this.book.addHistory(readHistory(JSON.parse(text))))
    } catch (e) {
      this.showProblem(`The room's past runs could not be loaded (${e instanceof Error ? e.message : String(e)}); reload the page to try again.`)
    }
  }

  private async loadLanguages (): Promise<void> {
    try {
      const r = await fetch('/api/languages')
      if (!r.ok) return
      const json: unknown = await r.json()
      if (!Array.isArray(json)) return
      const langs: LanguageInfo[] = []
      for (const v of json.slice(0, MAX_LANGUAGES)) {
        const o = v as Record<string, unknown>
        if (typeof o?.id !== 'string' || typeof o.name !== 'string' || !Array.isArray(o.extensions)) continue
        langs.push({
          id: o.id.slice(0, 100),
          name: o.name.slice(0, 100),
          extensions: o.extensions.filter((x): x is string => typeof x === 'string').map(x => x.slice(0, 20).toLowerCase()),
        })
      }
      if (langs.length) this.languages = langs
      this.renderControls()
    } catch {
      // The editor's own list stays: the server decides the language anyway.
    }
  }

  // --- drawing ----------------------------------------------------------------------------

  private showProblem (text: string | null): void {
    this.problem = text
    this.renderNote()
  }

  private renderAll (): void {
    this.renderList()
    this.renderHead()
    this.renderControls()
  }

  private renderControls (): void {
    const role = this.provider.role
    const path = this.workspace.activePath()
    const lang = this.languageOf(path)
    const local = !!lang && canRunLocally(lang.id)

    // Rebuilt only when its options change: rebuilding closes a list the user has open.
    const autoName = path ? autoLanguage(path, this.languages)?.name : undefined
    const options = [`auto${autoName ? ` (${autoName})` : ''}`, ...this.languages.map(l => `${l.id}=${l.name}`)].join('\n')
    if (options !== this.languageOptions) {
      this.languageOptions = options
      const picked = this.languageSelect.value
      fill(this.languageSelect,
        h('option', { value: '' }, `auto${autoName ? ` (${autoName})` : ''}`),
        ...this.languages.map(l => h('option', { value: l.id }, l.name)))
      this.languageSelect.value = this.languages.some(l => l.id === picked) ? picked : ''
    }
    const browserOption = this.whereSelect.querySelector<HTMLOptionElement>('option[value=browser]')!
    browserOption.disabled = !local
    if (!local && this.whereSelect.value === 'browser') this.whereSelect.value = 'server'

    this.fileLabel.textContent = path ?? 'no file open'
    this.fileLabel.title = path ? `Run ${path}` : 'Open a file to run it'
    const why = whyNoStart(role)
    this.runButton.disabled = why !== null || !path
    this.runButton.title = why ?? (path ? `Run ${path} (${showKeys(RUN_KEYS)})` : 'Open a file to run it')
    this.languageSelect.disabled = !canStart(role)
    this.whereSelect.disabled = !canStart(role)

    const run = this.selected ? this.book.get(this.selected) : undefined
    this.stopButton.disabled = !run || !canStop(run, role, this.provider.connId)
    this.stopButton.title = !run
      ? 'No run to stop'
      : run.debug
        ? 'The debug session\'s program is stopped from the debug panel'
        : this.stopButton.disabled && (run.state === 'running' || run.state === 'queued')
          ? 'Only who started a run, or the host, may stop it'
          : `Stop the run shown (${showKeys(STOP_KEYS)})`
    const typing = !!run && canType(run, role)
    for (const el of [this.stdinInput, this.sendButton, this.eofButton]) el.disabled = !typing
    this.stdinInput.placeholder = typing
      ? 'Input for the program: Enter sends the line, Ctrl+D closes the input'
      : role === 'reader'
        ? 'Read-only: you can watch runs but not type into them'
        : 'Input goes to the run shown while it runs'
    this.renderNote()
  }

  private renderNote (): void {
    const role = this.provider.role
    const parts: Array<Node | string> = []
    if (role === 'reader') parts.push(h('p', { 'data-testid': 'run-reader-note' }, whyNoStart(role)!))
    if (this.unavailable && canStart(role)) {
      const lang = this.languageOf(this.workspace.activePath())
      if (lang && canRunLocally(lang.id)) {
        const go = h('button', { type: 'button', class: 'small', 'data-testid': 'run-in-browser' }, `Run ${lang.name} in this browser`)
        go.addEventListener('click', () => { this.whereSelect.value = 'browser'; this.renderControls(); this.runFileInFront() })
        parts.push(h('p', { 'data-testid': 'run-unavailable' }, `The server cannot run programs now (${this.unavailable}). ${lang.name} can run in this browser instead: `, go))
      } else {
        parts.push(h('p', { 'data-testid': 'run-unavailable' }, `The server cannot run programs now (${this.unavailable}). ${lang?.name ?? 'This file'} needs the server: only JavaScript and Python run in this browser.`))
      }
    }
    if (this.problem) parts.push(h('p', { class: 'problem', 'data-testid': 'run-problem' }, this.problem))
    fill(this.note, ...parts)
    this.note.hidden = parts.length === 0
  }

  private renderList (): void {
    const runs = this.book.list()
    if (runs.length === 0) {
      fill(this.list, h('li', { class: 'empty' }, 'No runs yet. Run the file in front with ▶ Run.'))
      return
    }
    const now = Date.now()
    fill(this.list, ...runs.map(run => {
      const b = h('button', { type: 'button', class: 'run-item', title: statusText(run, now) },
        h('span', { class: 'run-item-path' }, run.path),
        h('span', { class: 'run-item-meta' }, `${who(run)} · ${shortState(run)}`))
      b.addEventListener('click', () => this.select(run.id))
      return h('li', {
        'data-run-id': run.id,
        'data-state': run.state,
        'data-where': run.where,
        'data-history': run.fromHistory ? 'true' : undefined,
        class: run.id === this.selected ? 'selected' : undefined,
      }, b)
    }))
  }

  private renderHead (): void {
    const run = this.selected ? this.book.get(this.selected) : undefined
    if (!run) {
      this.runTitle.textContent = ''
      this.runStatus.textContent = ''
      return
    }
    const where = run.where === 'browser' ? ' in this browser' : run.debug ? ' (debug session)' : ''
    this.runTitle.textContent = `${run.path} · ${run.language}${where} · started by ${run.byName}${run.fromHistory ? ' · from the history' : ''}`
    this.runStatus.textContent = statusText(run, Date.now())
    this.runStatus.dataset.state = run.state
  }

  private select (id: string): void {
    if (this.selected === id) return
    this.selected = id
    this.lineEditor.clear()
    this.renderList()
    this.renderHead()
    this.renderControls()
    this.redraw()
  }

  /** Draws the selected run's kept output from the start. */
  private redraw (): void {
    const t = this.terminal
    if (!t) return
    t.reset()
    this.atLineStart = true
    this.filter = new TrueColorFilter()
    const run = this.selected ? this.book.get(this.selected) : undefined
    if (!run) return
    if (run.droppedChars > 0) t.write(`\x1b[2m[${run.droppedChars} earlier characters of output are not kept in this page]\x1b[22m\r\n`)
    for (const c of run.chunks) this.writeChunk(c)
    if (run.state === 'exited') this.writeEnd(run)
  }

  private writeChunk (chunk: Chunk): void {
    const t = this.terminal
    if (!t) return
    const text = this.filter.feed(chunk.data)
    if (text) this.atLineStart = text.endsWith('\n')
    switch (chunk.kind) {
      // What the program wrote, as it wrote it (its own colours kept).
      case 'stdout':
      case 'compile':
        t.write(text)
        break
      // stderr in red unless it colours itself; typed input dimmed, as a console echoes it.
      case 'stderr':
        t.write(text.includes('\x1b[') ? text : `\x1b[31m${text}\x1b[39m`)
        break
      case 'stdin':
        t.write(`\x1b[2m${text}\x1b[22m`)
        break
    }
  }

  private writeEnd (run: Run): void {
    const t = this.terminal
    if (!t) return
    const rest = this.filter.flush()
    // The end goes on a line of its own, without a blank line after output that ended one.
    const newline = rest !== '' || !this.atLineStart ? '\r\n' : ''
    t.write(`${rest}\x1b[0m${newline}\x1b[2m── ${statusText(run, Date.now())} ──\x1b[22m\r\n`)
  }
}

/** The language a path's extension selects. */
function autoLanguage (path: string, languages: readonly LanguageInfo[]): LanguageInfo | undefined {
  const name = path.split('/').pop() ?? ''
  const dot = name.lastIndexOf('.')
  const ext = dot > 0 ? name.slice(dot + 1).toLowerCase() : ''
  return languages.find(l => l.extensions.includes(ext))
}

function who (run: Run): string {
  return run.where === 'browser' ? 'you, in this browser' : run.byName
}

function shortState (run: Run): string {
  switch (run.state) {
    case 'queued': return run.queue ? `queued #${run.queue.position}` : 'queued'
    case 'running': return 'running'
    case 'lost': return 'connection lost'
    case 'exited': {
      const end = run.end!
      if (end.error === 'stopped') return 'stopped'
      if (end.error) return 'failed'
      if (end.limit) return `${end.limit} limit`
      return end.code === null ? 'ended' : `exit ${end.code}`
    }
  }
}

/** What the end-to-end suite reads of a run. */
function summary (run: Run) {
  return {
    id: run.id,
    path: run.path,
    language: run.language,
    byName: run.byName,
    where: run.where,
    state: run.state,
    mine: run.mine,
    fromHistory: run.fromHistory,
    end: run.end,
  }
}
