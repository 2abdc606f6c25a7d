/**
 * The Debug Adapter Protocol messages the page reads, as closed, bounded types.
 *
 * A DAP message reaches the page inside the server's `dap` message, from the room's debug
 * hub, which passes the adapter's messages on as they are. So everything here is untrusted
 * input: each reader takes `unknown`, keeps only the fields the panel uses, cuts strings and
 * lists to bounds, and drops entries of another shape rather than fail the whole message.
 * Nothing read here is ever rendered as HTML (the panel sets `textContent` only).
 */

/** The longest string the panel takes from the adapter (a variable's value, an output
 * chunk): long enough for any value a person reads in a panel row. */
export const MAX_DAP_TEXT = 8 * 1024

/** The longest name (a frame, a variable, a thread). */
export const MAX_DAP_NAME = 512

/** The most threads, frames, scopes or variables taken from one response: a panel row each,
 * so more would only slow the page; the panel says when a list was cut. */
export const MAX_DAP_ITEMS = 500

/** A response, matched to its request by `request_seq`. */
export interface DapResponse {
  type: 'response'
  request_seq: number
  command: string
  success: boolean
  message: string | null
  body: Record<string, unknown>
}

/** An event, dispatched by its name. */
export interface DapEvent {
  type: 'event'
  event: string
  body: Record<string, unknown>
}

export type DapMessage = DapResponse | DapEvent

type Json = Record<string, unknown>

function isObject (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A string field cut to `max`, or `fallback` when absent or not a string. */
export function text (v: unknown, max = MAX_DAP_TEXT, fallback = ''): string {
  if (typeof v !== 'string') return fallback
  return v.length > max ? `${v.slice(0, max)}…` : v
}

/** A whole number ≥ 0, or null. */
export function count (v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null
}

/** A list's entries read by `read` (those it returns null for are left out), at most
 * {@link MAX_DAP_ITEMS}; `cut` says whether the list was longer. */
export function list<T> (v: unknown, read: (x: unknown) => T | null): { items: T[]; cut: boolean } {
  if (!Array.isArray(v)) return { items: [], cut: false }
  const items: T[] = []
  for (const x of v.slice(0, MAX_DAP_ITEMS)) {
    const t = read(x)
    if (t !== null) items.push(t)
  }
  return { items, cut: v.length > MAX_DAP_ITEMS }
}

/** Reads one DAP message (a response or an event); null for anything else. Requests from
 * the adapter never reach the page: the hub answers them itself. */
export function readDapMessage (v: unknown): DapMessage | null {
  if (!isObject(v)) return null
  const body = isObject(v.body) ? v.body : {}
  if (v.type === 'response') {
    const requestSeq = count(v.request_seq)
    if (requestSeq === null) return null
    return {
      type: 'response',
      request_seq: requestSeq,
      command: text(v.command, 64),
      success: v.success === true,
      message: typeof v.message === 'string' ? text(v.message, 2048) : null,
      body,
    }
  }
  if (v.type === 'event' && typeof v.event === 'string') {
    return { type: 'event', event: text(v.event, 64), body }
  }
  return null
}

export interface Thread { id: number; name: string }

export function readThread (v: unknown): Thread | null {
  if (!isObject(v)) return null
  const id = count(v.id)
  return id === null ? null : { id, name: text(v.name, MAX_DAP_NAME, `thread ${id}`) }
}

export interface StackFrame {
  id: number
  name: string
  /** The adapter's path (a container path), when the frame has a source with a path. */
  path: string | null
  line: number
  column: number
}

export function readFrame (v: unknown): StackFrame | null {
  if (!isObject(v)) return null
  const id = count(v.id)
  if (id === null) return null
  const source = isObject(v.source) ? v.source : {}
  return {
    id,
    name: text(v.name, MAX_DAP_NAME, '?'),
    path: typeof source.path === 'string' ? text(source.path, 4096) : null,
    line: count(v.line) ?? 0,
    column: count(v.column) ?? 0,
  }
}

export interface Scope { name: string; variablesReference: number; expensive: boolean }

export function readScope (v: unknown): Scope | null {
  if (!isObject(v)) return null
  const ref = count(v.variablesReference)
  if (ref === null) return null
  return { name: text(v.name, MAX_DAP_NAME, 'scope'), variablesReference: ref, expensive: v.expensive === true }
}

export interface Variable {
  name: string
  value: string
  type: string | null
  /** > 0 when it has children, fetched with `variables` when expanded. */
  variablesReference: number
}

export function readVariable (v: unknown): Variable | null {
  if (!isObject(v) || typeof v.name !== 'string') return null
  return {
    name: text(v.name, MAX_DAP_NAME),
    value: text(v.value),
    type: typeof v.type === 'string' ? text(v.type, MAX_DAP_NAME) : null,
    variablesReference: count(v.variablesReference) ?? 0,
  }
}

/** The `stopped` event's body. */
export interface Stopped { reason: string; threadId: number | null; description: string | null; text: string | null }

export function readStopped (body: Json): Stopped {
  return {
    reason: text(body.reason, 64, 'paused'),
    threadId: count(body.threadId),
    description: typeof body.description === 'string' ? text(body.description, 1024) : null,
    text: typeof body.text === 'string' ? text(body.text, 1024) : null,
  }
}

/** The `output` event's body: the text and where it came from. */
export function readOutput (body: Json): { category: string; output: string } | null {
  if (typeof body.output !== 'string') return null
  return { category: text(body.category, 32, 'console'), output: text(body.output) }
}

/** The `evaluate` response's body. */
export function readEvaluate (body: Json): Variable {
  return {
    name: '',
    value: text(body.result),
    type: typeof body.type === 'string' ? text(body.type, MAX_DAP_NAME) : null,
    variablesReference: count(body.variablesReference) ?? 0,
  }
}
