/**
 * The page's part in the room's shared debug session, without the DOM: it reads the
 * server's debug messages (`debug_started`, `debug_joined`, `dap`, `debug_breakpoints`,
 * `debug_ended`, and errors naming its requests), drives a {@link DapClient} once attached,
 * and keeps what the panel shows (threads, the stack of the stopped thread, the selected
 * frame's scopes and variables, program output, how the session ended).
 *
 * The hub on the server does the hard parts for every participant alike (re-sequencing,
 * merging breakpoints per file, holding readers to inspecting, replaying the current stop
 * to a late joiner), so the rules here are only the client's: configure once attached
 * (breakpoints per file, then `configurationDone`), ask for the stack when stopped, and
 * drop answers that a newer stop made stale.
 */
import type { ClientMessage, Role, ServerMessage } from '../net/messages.js'
import { DapClient, DapError, type Timers } from './client.js'
import {
  list, readEvaluate, readFrame, readOutput, readScope, readStopped, readThread, readVariable,
  type DapEvent, type Scope, type StackFrame, type Stopped, type Thread, type Variable,
} from './dap.js'
import { PathMap } from './paths.js'
import { BreakpointStore } from './breakpointStore.js'

/** The most frames asked for per stop: deeper stacks are rare in a shared session, and the
 * panel says when the stack was cut. */
export const MAX_STACK_FRAMES = 50

/** The program output the panel keeps, in characters; older output is dropped first. */
export const MAX_OUTPUT_CHARS = 64 * 1024

/** The longest expression the evaluate box sends: far under the server's 64 KiB message
 * limit, and longer than anything typed into one line. */
export const MAX_EXPRESSION_CHARS = 4 * 1024

/** What the page can say to the room, and who it is there. */
export interface RoomLink {
  send: (msg: ClientMessage) => number | null
  connId: () => number | null
  role: () => Role | null
}

/** Where the page stands with the room's session. */
export type Phase =
  | { kind: 'idle' }
  /** Someone's session is going; this page is not in it. */
  | { kind: 'offered'; id: string; path: string; language: string; by: number }
  /** `debug_start` sent (to start one on `path`, or to join with `path` empty). */
  | { kind: 'starting'; request: number; path: string }
  | { kind: 'attached'; id: string; path: string; language: string; by: number }

/** A frame with its room path (null: not a file of the room). */
export interface Frame extends StackFrame { roomPath: string | null }

/** A scope with its variables, once fetched. */
export interface ScopeView { scope: Scope; variables: Variable[] | null; cut: boolean; error: string | null }

/** How the last session ended. */
export interface Ending { exitCode: number | null; error: string | null }

export class DebugSession {
  phase: Phase = { kind: 'idle' }
  capabilities: Record<string, unknown> = {}
  stopped: Stopped | null = null
  threads: Thread[] = []
  threadId: number | null = null
  frames: Frame[] = []
  framesCut = false
  frameId: number | null = null
  scopes: ScopeView[] = []
  output = ''
  ended: Ending | null = null
  /** Join a session someone else starts without being asked. */
  autoJoin = false

  private client: DapClient | null = null
  private paths: PathMap | null = null
  /** Bumped on every stop and resume: answers to older requests are dropped. */
  private generation = 0
  /** Attached when the connection dropped: join again when it is back. */
  private rejoin = false
  private readonly listeners: Array<() => void> = []

  constructor (
    private readonly room: RoomLink,
    readonly breakpoints: BreakpointStore,
    private readonly notify: (text: string) => void,
    /** A new stop: the panel shows its place. */
    private readonly onStop: (frame: Frame | null) => void = () => {},
    private readonly timers?: Timers,
    private readonly timeoutMs?: number,
  ) {}

  onChange (fn: () => void): void {
    this.listeners.push(fn)
  }

  /** Whether this page may steer the program (the hub refuses readers anyway). */
  canControl (): boolean {
    const role = this.room.role()
    return role === 'writer' || role === 'host'
  }

  /** Whether this page may end the session for everyone: who started it, or the host. */
  canEnd (): boolean {
    return this.phase.kind === 'attached' && (this.phase.by === this.room.connId() || this.room.role() === 'host')
  }

  /** Starts the room's session on `path` (or joins the one going: a room has one). */
  start (path: string, language?: string): void {
    if (!this.canControl()) {
      this.notify('Readers may join a debug session but not start one; ask the host for a writer link.')
      return
    }
    this.sendStart(path, language)
  }

  /** Joins the session that is going (never starts one: the path is left empty). */
  join (): void {
    this.sendStart('')
  }

  /** Leaves the session; it goes on for the others. */
  async leave (): Promise<void> {
    if (this.phase.kind !== 'attached') return
    const { id, path, language, by } = this.phase
    await this.request('disconnect', { terminateDebuggee: false })
    this.detach({ kind: 'offered', id, path, language, by }, 'you left the debug session')
  }

  /** Ends the session for everyone (who started it, or the host). */
  async stop (): Promise<void> {
    if (!this.canEnd()) {
      this.notify('Only who started this debug session, or the host, can stop it; Leave detaches you.')
      return
    }
    const terminate = this.capabilities.supportsTerminateRequest === true
    await this.request(terminate ? 'terminate' : 'disconnect', terminate ? {} : { terminateDebuggee: true })
  }

  /** Continue, next, stepIn, stepOut or pause, on the selected thread. */
  async control (command: 'continue' | 'next' | 'stepIn' | 'stepOut' | 'pause'): Promise<void> {
    if (this.phase.kind !== 'attached') return
    if (!this.canControl()) {
      this.notify('Readers can inspect the program but not control it; ask the host for write access.')
      return
    }
    const threadId = this.threadId ?? this.threads[0]?.id ?? this.stopped?.threadId ?? null
    if (threadId === null) {
      this.notify(command === 'pause' ? 'No thread to pause yet.' : 'The program is not stopped.')
      return
    }
    if (command !== 'pause' && this.stopped === null) {
      this.notify('The program is running: pause it first, or wait for a breakpoint.')
      return
    }
    const ok = await this.request(command, { threadId })
    if (ok && command !== 'pause') this.resumed()
  }

  /** Selects a frame of the stack: its scopes and variables are fetched. */
  async selectFrame (frameId: number): Promise<void> {
    const frame = this.frames.find(f => f.id === frameId)
    if (!frame) return
    this.frameId = frameId
    this.showCurrent()
    this.changed()
    await this.loadScopes(this.generation)
  }

  /** The children of a variable (`variablesReference` > 0), bounded. */
  async variables (ref: number): Promise<{ items: Variable[]; cut: boolean }> {
    const body = await this.requestOrThrow('variables', { variablesReference: ref })
    return list(body.variables, readVariable)
  }

  /** Evaluates `expression` in the selected frame. */
  async evaluate (expression: string): Promise<Variable> {
    if (expression.length > MAX_EXPRESSION_CHARS) {
      throw new DapError('evaluate', `an expression may be at most ${MAX_EXPRESSION_CHARS} characters`)
    }
    const args: Record<string, unknown> = { expression, context: 'repl' }
    if (this.frameId !== null) args.frameId = this.frameId
    return readEvaluate(await this.requestOrThrow('evaluate', args))
  }

  /** Sets or clears our breakpoint at `line` of `path`, and tells the session if attached. */
  toggleBreakpoint (path: string, line: number): void {
    if (!this.canControl()) {
      this.notify('Readers cannot set breakpoints: they would stop everyone\'s program.')
      return
    }
    const r = this.breakpoints.toggle(path, line)
    if (typeof r === 'string') {
      this.notify(r)
      return
    }
    void this.sendBreakpoints(path)
  }

  /** Our breakpoints moved with an edit: the session hears the new lines. */
  breakpointsMoved (path: string, lines: number[]): void {
    const before = this.breakpoints.ownLines(path).join(',')
    this.breakpoints.move(path, lines)
    if (this.breakpoints.ownLines(path).join(',') !== before) void this.sendBreakpoints(path)
  }

  /** A message from the server. */
  receive (msg: ServerMessage): void {
    switch (msg.type) {
      case 'debug_started':
        if (this.phase.kind === 'idle' || (this.phase.kind === 'offered' && this.phase.id !== msg.debug_id)) {
          this.ended = null
          this.phase = { kind: 'offered', id: msg.debug_id, path: msg.path, language: msg.language, by: msg.by }
          this.changed()
          if (this.autoJoin && msg.by !== this.room.connId()) this.join()
        }
        return
      case 'debug_joined': {
        if (this.phase.kind !== 'starting') return
        if (msg.responding_to !== undefined && msg.responding_to !== this.phase.request) return
        this.attach(msg)
        return
      }
      case 'dap':
        if (this.phase.kind === 'attached' && this.phase.id === msg.debug_id) this.client?.receive(msg.message)
        return
      case 'debug_breakpoints':
        this.breakpoints.setMerged(msg.path, msg.lines)
        return
      case 'debug_ended': {
        const ours = (this.phase.kind === 'attached' || this.phase.kind === 'offered') && this.phase.id === msg.debug_id
        if (!ours && this.phase.kind !== 'starting') {
          this.breakpoints.clearMerged()
          return
        }
        this.ended = { exitCode: msg.exit_code, error: msg.error }
        this.rejoin = false
        this.detach({ kind: 'idle' }, 'the debug session has ended')
        this.breakpoints.clearMerged()
        return
      }
      default:
    }
  }

  /** The server refused a request; ours when it names our `debug_start`. */
  refused (respondingTo: number | undefined, message: string): void {
    if (respondingTo !== undefined && this.client?.refused(respondingTo, message)) return
    if (this.phase.kind !== 'starting' || respondingTo !== this.phase.request) return
    const joining = this.phase.path === ''
    this.phase = { kind: 'idle' }
    this.changed()
    this.notify(joining ? `Could not join the debug session: ${message}` : `Could not start debugging: ${message}`)
  }

  /** The room connection dropped: the hub detached us; join again once it is back. */
  disconnected (): void {
    if (this.phase.kind === 'idle') return
    this.rejoin = this.phase.kind === 'attached'
    this.detach({ kind: 'idle' }, 'the connection to the room was lost')
  }

  /** The room connection is back (after `welcome`). */
  reconnected (): void {
    if (!this.rejoin) return
    this.rejoin = false
    this.join()
  }

  private sendStart (path: string, language?: string): void {
    if (this.phase.kind === 'attached' || this.phase.kind === 'starting') return
    const msg: ClientMessage = { type: 'debug_start', path }
    if (language) msg.language = language
    const request = this.room.send(msg)
    if (request === null) {
      this.notify('Not connected to the room; wait for the connection and try again.')
      return
    }
    this.ended = null
    this.phase = { kind: 'starting', request, path }
    this.changed()
  }

  private attach (msg: Extract<ServerMessage, { type: 'debug_joined' }>): void {
    this.phase = { kind: 'attached', id: msg.debug_id, path: msg.path, language: msg.language, by: msg.by }
    this.capabilities = typeof msg.capabilities === 'object' && msg.capabilities !== null && !Array.isArray(msg.capabilities)
      ? { ...(msg.capabilities as Record<string, unknown>) }
      : {}
    this.paths = new PathMap(msg.work_dir, msg.aliases)
    this.output = ''
    this.clearStop()
    const id = msg.debug_id
    this.client = new DapClient(
      (message) => this.room.send({ type: 'dap', debug_id: id, message }),
      (event) => this.onEvent(event),
      this.timeoutMs,
      this.timers,
    )
    this.changed()
  }

  private detach (next: Phase, why: string): void {
    this.client?.close(why)
    this.client = null
    this.paths = null
    this.phase = next
    this.clearStop()
    this.threads = []
    this.threadId = null
    this.changed()
  }

  private onEvent (event: DapEvent): void {
    switch (event.event) {
      case 'initialized':
        void this.configure()
        return
      case 'capabilities':
        if (typeof event.body.capabilities === 'object' && event.body.capabilities !== null) {
          Object.assign(this.capabilities, event.body.capabilities)
          this.changed()
        }
        return
      case 'stopped':
        this.stopped = readStopped(event.body)
        this.threadId = this.stopped.threadId ?? this.threadId
        this.generation++
        void this.loadStop(this.generation, true)
        this.changed()
        return
      case 'continued':
        this.resumed()
        return
      case 'output': {
        const out = readOutput(event.body)
        if (!out || out.category === 'telemetry') return
        this.output = (this.output + out.output).slice(-MAX_OUTPUT_CHARS)
        this.changed()
        return
      }
      case 'exited': {
        const code = event.body.exitCode
        this.ended = { exitCode: typeof code === 'number' && Number.isSafeInteger(code) ? code : null, error: null }
        this.changed()
        return
      }
      default:
    }
  }

  /** Once attached: our breakpoints, file by file, then `configurationDone` (the hub starts
   * the program on the first one, and replays the current stop to a late joiner). */
  private async configure (): Promise<void> {
    if (this.canControl()) await Promise.all(this.breakpoints.ownPaths().map(p => this.sendBreakpoints(p)))
    await this.request('configurationDone', {})
  }

  private async sendBreakpoints (path: string): Promise<void> {
    if (this.phase.kind !== 'attached' || !this.paths || !this.canControl()) return
    const container = this.paths.toContainer(path)
    if (container === null) {
      this.notify(`${path} is not part of the program being debugged, so its breakpoints wait for a session that runs it.`)
      return
    }
    const lines = this.breakpoints.ownLines(path)
    const body = await this.request('setBreakpoints', {
      source: { path: container, name: container.split('/').pop() },
      breakpoints: lines.map(line => ({ line })),
      sourceModified: false,
    })
    const unverified = body ? list(body.breakpoints, (b) => (typeof b === 'object' && b !== null && (b as { verified?: unknown }).verified === false ? b : null)).items : []
    if (unverified.length) {
      const why = (unverified[0] as { message?: unknown }).message
      this.notify(`${unverified.length} breakpoint(s) in ${path} not set${typeof why === 'string' ? `: ${why.slice(0, 200)}` : ''}`)
    }
  }

  /** After a stop: threads, the stack of the stopped thread, the top frame's variables. */
  private async loadStop (gen: number, fresh: boolean): Promise<void> {
    const threads = await this.request('threads', {}, gen)
    if (gen !== this.generation) return
    if (threads) this.threads = list(threads.threads, readThread).items
    const threadId = this.threadId ?? this.threads[0]?.id ?? null
    this.threadId = threadId
    if (threadId === null) { this.changed(); return }
    const stack = await this.request('stackTrace', { threadId, startFrame: 0, levels: MAX_STACK_FRAMES }, gen)
    if (gen !== this.generation) return
    const frames = stack ? list(stack.stackFrames, readFrame) : { items: [], cut: false }
    this.frames = frames.items.slice(0, MAX_STACK_FRAMES).map(f => ({ ...f, roomPath: f.path !== null ? this.paths?.toRoom(f.path) ?? null : null }))
    const total = stack && typeof stack.totalFrames === 'number' ? stack.totalFrames : 0
    this.framesCut = frames.cut || total > this.frames.length
    const top = this.frames[0] ?? null
    this.frameId = top?.id ?? null
    this.showCurrent()
    this.changed()
    if (fresh) this.onStop(top)
    await this.loadScopes(gen)
  }

  private async loadScopes (gen: number): Promise<void> {
    const frameId = this.frameId
    if (frameId === null) return
    const body = await this.request('scopes', { frameId }, gen)
    if (gen !== this.generation || frameId !== this.frameId) return
    const scopes = body ? list(body.scopes, readScope).items : []
    this.scopes = scopes.map(scope => ({ scope, variables: null, cut: false, error: null }))
    this.changed()
    // Expensive scopes (globals, often) wait until the user opens them.
    await Promise.all(this.scopes.filter(s => !s.scope.expensive && s.scope.variablesReference > 0).map(async (s) => {
      try {
        const vars = await this.variables(s.scope.variablesReference)
        if (gen !== this.generation || frameId !== this.frameId) return
        s.variables = vars.items
        s.cut = vars.cut
      } catch (e) {
        s.error = e instanceof Error ? e.message : String(e)
      }
    }))
    if (gen === this.generation && frameId === this.frameId) this.changed()
  }

  private showCurrent (): void {
    const frame = this.frames.find(f => f.id === this.frameId)
    this.breakpoints.setCurrent(frame?.roomPath && frame.line > 0 ? { path: frame.roomPath, line: frame.line } : null)
  }

  private resumed (): void {
    this.generation++
    this.clearStop()
    this.changed()
  }

  private clearStop (): void {
    this.stopped = null
    this.frames = []
    this.framesCut = false
    this.frameId = null
    this.scopes = []
    this.breakpoints.setCurrent(null)
  }

  /** A request whose failure is told to the user; resolves with the body, or null. A
   * failure is not worth telling when the session ended meanwhile, or (with `gen`) when a
   * newer stop or resume made the answer moot. */
  private async request (command: string, args: Record<string, unknown>, gen?: number): Promise<Record<string, unknown> | null> {
    const client = this.client
    try {
      return await this.requestOrThrow(command, args)
    } catch (e) {
      const moot = this.client !== client || (gen !== undefined && gen !== this.generation)
      if (!moot) this.notify(`${command}: ${e instanceof Error ? e.message : String(e)}`)
      return null
    }
  }

  private requestOrThrow (command: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!this.client) return Promise.reject(new DapError(command, 'not in a debug session'))
    return this.client.request(command, args)
  }

  private changed (): void {
    for (const fn of this.listeners) fn()
  }
}

