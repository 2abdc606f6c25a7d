/**
 * The room's runs as the run panel shows them, without DOM: a bounded book of runs (started
 * by anyone in the room, in this browser, or read from the room's history) fed by the
 * server's run messages, and the rules for who may start, stop or type into a run. The
 * panel (`../panel.ts`) only draws what this keeps; `tests/unit/runs.test.ts` states the
 * rules.
 *
 * Everything here comes from the server or other participants and is untrusted: the book
 * keeps at most {@link MAX_RUNS_KEPT} runs and {@link MAX_OUTPUT_CHARS} of output per run,
 * and it never interprets output (the terminal draws it as text with ANSI colours).
 */
import type { ErrorCode, Role, ServerMessage } from '../../net/messages.js'

/** How many runs the panel lists (live and from the history together): a session's recent
 * work fits, and a room that runs in a loop cannot make the page hold thousands. */
export const MAX_RUNS_KEPT = 40

/** How much output the page keeps per run, in UTF-16 units: 4x the server's own history cap
 * (64 KiB per stream), enough to scroll back through a long run; older output is dropped
 * first, and the terminal says how much. */
export const MAX_OUTPUT_CHARS = 256 * 1024

/** Where a run happens. */
export type RunWhere = 'server' | 'browser'

/** What a piece of output is: the program's streams, the compiler's, or what this page typed. */
export type ChunkKind = 'compile' | 'stdout' | 'stderr' | 'stdin'

/** A piece of a run's output, as it came. */
export interface Chunk { kind: ChunkKind; data: string }

/** How a run ended (`run_exited`, a history record, or a run in this browser). */
export interface RunEnd {
  stage: string
  code: number | null
  durationMs: number
  limit: string | null
  error: string | null
}

/** Where a run stands; `lost`: the page stopped hearing about it (the socket closed). */
export type RunState = 'queued' | 'running' | 'exited' | 'lost'

/** One run as the panel shows it. */
export interface Run {
  /** The server's run id (a debug session's id for its program), or `browser-N`. */
  id: string
  /** The entry file, a room path. */
  path: string
  /** The registry language id. */
  language: string
  /** The starter's connection id (0: a REST call; null: not known, e.g. from the history). */
  by: number | null
  /** The starter's name as shown. */
  byName: string
  where: RunWhere
  /** The program of the room's debug session (its output comes as a run with its id). */
  debug: boolean
  /** This page asked for it. */
  mine: boolean
  /** Read from the room's history, not watched live. */
  fromHistory: boolean
  state: RunState
  /** While queued: its place and the cap it waits on. */
  queue: { position: number; limit: string } | null
  /** When the page first heard of it (ms, the page's clock), for the elapsed time. */
  seenAt: number
  /** When it started (ms since the epoch), when known. */
  startedAt: number | null
  /** How it ended, once it has. */
  end: RunEnd | null
  /** The output kept, oldest first. */
  chunks: Chunk[]
  /** UTF-16 units in `chunks`. */
  chars: number
  /** Output dropped from the front to stay under {@link MAX_OUTPUT_CHARS}. */
  droppedChars: number
}

/** What changed, for the panel. */
export type RunChange =
  | { kind: 'added'; run: Run }
  | { kind: 'updated'; run: Run }
  | { kind: 'output'; run: Run; chunk: Chunk }

/** What the book needs to know about the room to name people. */
export interface RoomView {
  /** Our connection id, once `welcome` came. */
  myConn: number | null
  /** The display name of a connection, when it is in the room. */
  nameOf: (conn: number) => string | undefined
}

/** The `by` of a run started through the REST API (`REST_CALLER` in the server). */
export const REST_CALLER = 0

/** The words the run service uses when it cannot run anything (no Docker engine, an image
 * it cannot get): `the run could not start: runs are unavailable: ...` (server/src/runs.rs).
 * The server has no code for this on `run_exited`, so its sentence is what there is. */
const UNAVAILABLE_RE = /runs are unavailable/i

/** Who may start runs: writers and the host, as the server checks. */
export function canStart (role: Role | null): boolean {
  return role === 'writer' || role === 'host'
}

/** Who may stop a run: its starter or the host, as the server checks (a run in this browser:
 * this page). A debug session's program is ended from the debug panel. */
export function canStop (run: Run, role: Role | null, myConn: number | null): boolean {
  if (run.state !== 'running' && run.state !== 'queued') return false
  if (run.where === 'browser') return run.mine
  if (run.debug) return false
  return role === 'host' || (run.by !== null && run.by === myConn)
}

/** Who may type into a run's stdin: anyone who may write, while it runs. */
export function canType (run: Run, role: Role | null): boolean {
  if (run.state !== 'running') return false
  if (run.where === 'browser') return run.mine
  return canStart(role)
}

/** Why this page may not start runs, in words for the panel, or null when it may. */
export function whyNoStart (role: Role | null): string | null {
  if (role === 'reader') return 'You are a reader here (read-only): you can watch runs, but not start, stop or type into them.'
  if (role === null) return 'Connecting to the room…'
  return null
}

/** `queued: 2nd in line, waiting for a free run slot on this server (max_runs)`: the same
 * words as `queued_text` in protocol/src/messages.rs, which mesh-proxy prints and hands to
 * editors (the unit test reads the Rust file to keep the two in step). */
export function queuedText (position: number, limit: string): string {
  const suffix = position % 10 === 1 && position % 100 !== 11
    ? 'st'
    : position % 10 === 2 && position % 100 !== 12
      ? 'nd'
      : position % 10 === 3 && position % 100 !== 13 ? 'rd' : 'th'
  const why: Record<string, string> = {
    max_runs: 'a free run slot on this server (max_runs)',
    max_debug_sessions: 'a free debug slot on this server (max_debug_sessions)',
    max_runs_per_room: 'one of this room\'s runs to end (max_runs_per_room)',
    max_runs_per_person: 'the other run of whoever asked to end (max_runs_per_person)',
  }
  return `queued: ${position}${suffix} in line, waiting for ${Object.hasOwn(why, limit) ? why[limit] : limit}`
}

/** `0.41 s`, `12.3 s`, `2 min 05 s`. */
export function formatDuration (ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`
}

/** The limits the run service names, in words. */
const LIMIT_WORDS: Record<string, string> = {
  time: 'the time limit',
  memory: 'the memory limit',
  output: 'the output limit',
  pids: 'the limit on processes',
}

/** How a run stands, in one line: `running…`, `exit 0 · 0.41 s`, `stopped after 3.20 s`,
 * `ended by the time limit · exit 137 · 10.0 s`, `could not run: ...`. */
export function statusText (run: Run, now: number): string {
  switch (run.state) {
    case 'queued':
      return run.queue ? queuedText(run.queue.position, run.queue.limit) : 'queued'
    case 'running':
      return 'running…'
    case 'lost':
      return 'the connection to the room dropped while this ran: its end is in the history once it is over'
    case 'exited':
      break
  }
  const end = run.end!
  const elapsed = end.durationMs > 0 ? end.durationMs : Math.max(0, now - run.seenAt)
  if (end.error === 'stopped') return `stopped after ${formatDuration(elapsed)}`
  if (end.error) return `could not run: ${end.error}`
  const parts: string[] = []
  if (end.limit) parts.push(`ended by ${LIMIT_WORDS[end.limit] ?? `the ${end.limit} limit`}`)
  if (end.stage === 'compile') parts.push(end.code === 0 ? 'compiled' : 'compile failed')
  parts.push(end.code === null ? 'no exit code' : `exit ${end.code}`)
  parts.push(formatDuration(end.durationMs))
  return parts.join(' · ')
}

/** The sentence the server gave when it cannot run programs at all, or null. */
export function unavailableReason (msg: ServerMessage, myRequests: ReadonlySet<number>): string | null {
  if (msg.type === 'error' && msg.code === ('unavailable' satisfies ErrorCode) && msg.responding_to !== undefined && myRequests.has(msg.responding_to)) {
    return msg.message
  }
  if (msg.type === 'run_exited' && msg.error && UNAVAILABLE_RE.test(msg.error)) return msg.error
  return null
}

/** One finished run from the room's history (`GET /api/sessions/{id}/runs`), the fields of
 * `mesh_protocol::rest::RunRecord`. */
export interface HistoryRecord {
  run_id: string
  path: string
  language: string
  by: string
  started_at: number
  stage: string
  code: number | null
  duration_ms: number
  limit: string | null
  error: string | null
  stdout: string
  stderr: string
}

/** The runs the page knows, bounded; fed by the server's messages, the history and runs in
 * this browser, each call returning what changed for the panel to draw. */
export class RunBook {
  private readonly runs = new Map<string, Run>()
  private readonly debugIds = new Set<string>()
  private localNo = 0

  constructor (private readonly now: () => number = Date.now) {}

  /** The runs, newest first. */
  list (): Run[] {
    return [...this.runs.values()].sort((a, b) => order(b) - order(a))
  }

  /** The run with this id, if the book keeps it. */
  get (id: string): Run | undefined {
    return this.runs.get(id)
  }

  /**
   * Takes one server message. `requested` maps this page's pending `run` request ids to
   * true; a `run_started` or `run_queued` answering one of them is marked as ours.
   */
  apply (msg: ServerMessage, room: RoomView, requested: ReadonlySet<number> = new Set()): RunChange[] {
    switch (msg.type) {
      case 'debug_started':
        this.debugIds.add(msg.debug_id)
        if (this.debugIds.size > MAX_RUNS_KEPT) this.debugIds.delete(this.debugIds.values().next().value!)
        return this.markDebug(msg.debug_id)
      case 'run_queued':
      case 'run_started': {
        const mine = msg.responding_to !== undefined && requested.has(msg.responding_to)
        const existing = this.runs.get(msg.run_id)
        const queue = msg.type === 'run_queued' ? { position: msg.position, limit: msg.limit } : null
        const state: RunState = msg.type === 'run_queued' ? 'queued' : 'running'
        if (existing) {
          if (existing.state === 'exited') return []
          existing.state = state
          existing.queue = queue
          existing.mine ||= mine
          if (state === 'running') existing.startedAt = this.now()
          return [{ kind: 'updated', run: existing }]
        }
        const run = this.add({
          id: msg.run_id,
          path: msg.path,
          language: msg.language,
          by: msg.by,
          byName: nameOf(msg.by, room),
          where: 'server',
          debug: this.debugIds.has(msg.run_id) || (msg.type === 'run_queued' && msg.debug),
          mine,
          state,
          queue,
          startedAt: state === 'running' ? this.now() : null,
        })
        return [{ kind: 'added', run }]
      }
      case 'run_output': {
        const run = this.runs.get(msg.run_id)
        if (!run || run.state === 'exited') return []
        return [this.output(run, msg.stream, msg.data)]
      }
      case 'run_exited': {
        const run = this.runs.get(msg.run_id)
        if (!run || run.state === 'exited') return []
        return [this.finish(run, { stage: msg.stage, code: msg.code, durationMs: msg.duration_ms, limit: msg.limit, error: msg.error })]
      }
      default:
        return []
    }
  }

  /** The room socket closed: runs still going may end unseen. */
  connectionLost (): RunChange[] {
    const out: RunChange[] = []
    for (const run of this.runs.values()) {
      if (run.where === 'server' && (run.state === 'running' || run.state === 'queued')) {
        run.state = 'lost'
        out.push({ kind: 'updated', run })
      }
    }
    return out
  }

  /** Adds the room's finished runs from its history; a run watched live keeps what was
   * seen, unless its end was missed (lost with the connection). */
  addHistory (records: readonly HistoryRecord[]): RunChange[] {
    const out: RunChange[] = []
    // Oldest first, so the newest survive the bound.
    for (const r of [...records].sort((a, b) => a.started_at - b.started_at)) {
      const known = this.runs.get(r.run_id)
      if (known && known.state !== 'lost') continue
      const end: RunEnd = { stage: r.stage, code: r.code, durationMs: r.duration_ms, limit: r.limit, error: r.error }
      if (known) {
        known.end = end
        known.state = 'exited'
        out.push({ kind: 'updated', run: known })
        continue
      }
      const run = this.add({
        id: r.run_id,
        path: r.path,
        language: r.language,
        by: null,
        byName: r.by || 'someone',
        where: 'server',
        debug: false,
        mine: false,
        state: 'exited',
        queue: null,
        startedAt: r.started_at,
        fromHistory: true,
        end,
      })
      // The history keeps the streams apart: stdout, then what went to stderr.
      if (r.stdout) this.output(run, 'stdout', r.stdout)
      if (r.stderr) this.output(run, 'stderr', r.stderr)
      if (this.runs.has(run.id)) out.push({ kind: 'added', run })
    }
    return out
  }

  /** A run in this browser begins; returns it (its id is made here). */
  startLocal (path: string, language: string, byName: string): Run {
    this.localNo++
    return this.add({
      id: `browser-${this.localNo}`,
      path,
      language,
      by: null,
      byName,
      where: 'browser',
      debug: false,
      mine: true,
      state: 'running',
      queue: null,
      startedAt: this.now(),
    })
  }

  /** Output of a run (a run in this browser, or what this page typed into any run). */
  append (id: string, kind: ChunkKind, data: string): RunChange[] {
    const run = this.runs.get(id)
    if (!run || run.state === 'exited') return []
    return [this.output(run, kind, data)]
  }

  /** The end of a run in this browser. */
  endLocal (id: string, end: RunEnd): RunChange[] {
    const run = this.runs.get(id)
    if (!run || run.state === 'exited') return []
    return [this.finish(run, end)]
  }

  private add (fields: Omit<Run, 'seenAt' | 'end' | 'chunks' | 'chars' | 'droppedChars' | 'fromHistory'> & { fromHistory?: boolean; end?: RunEnd }): Run {
    const run: Run = { fromHistory: false, end: null, ...fields, seenAt: this.now(), chunks: [], chars: 0, droppedChars: 0 }
    this.runs.set(run.id, run)
    this.trim()
    return run
  }

  private output (run: Run, kind: ChunkKind, data: string): RunChange {
    // One chunk over the bound keeps only its end.
    const text = data.length > MAX_OUTPUT_CHARS ? data.slice(data.length - MAX_OUTPUT_CHARS) : data
    run.droppedChars += data.length - text.length
    const chunk = { kind, data: text }
    run.chunks.push(chunk)
    run.chars += text.length
    while (run.chars > MAX_OUTPUT_CHARS && run.chunks.length > 1) {
      const first = run.chunks.shift()!
      run.chars -= first.data.length
      run.droppedChars += first.data.length
    }
    return { kind: 'output', run, chunk }
  }

  private finish (run: Run, end: RunEnd): RunChange {
    run.state = 'exited'
    run.queue = null
    run.end = end
    return { kind: 'updated', run }
  }

  private markDebug (id: string): RunChange[] {
    const run = this.runs.get(id)
    if (!run || run.debug) return []
    run.debug = true
    return [{ kind: 'updated', run }]
  }

  /** Drops the oldest finished runs past the bound (runs going on are kept while they go). */
  private trim (): void {
    if (this.runs.size <= MAX_RUNS_KEPT) return
    const finished = [...this.runs.values()].filter(r => r.state === 'exited' || r.state === 'lost').sort((a, b) => order(a) - order(b))
    for (const r of finished) {
      if (this.runs.size <= MAX_RUNS_KEPT) break
      this.runs.delete(r.id)
    }
  }
}

/** Sort key: when the run started, else when the page heard of it. */
function order (run: Run): number {
  return run.startedAt ?? run.seenAt
}

function nameOf (by: number, room: RoomView): string {
  if (by === REST_CALLER) return 'the REST API'
  if (by === room.myConn) return 'you'
  return room.nameOf(by) ?? `participant ${by}`
}
