/**
 * mesh's extension messages, mirrored from `protocol/src/messages.rs` (the Rust types are
 * the definition; `tests/unit/messages.test.ts` keeps this mirror in step with them).
 *
 * Everything the server sends is untrusted input: {@link parseServerMessage} turns JSON into
 * these closed types or throws a {@link ProtocolError} that names what is wrong. Strings are
 * bounded so that a hostile or broken server cannot make the page hold or draw megabytes.
 */

/** The version of mesh's messages this page speaks (`PROTOCOL_VERSION`). */
export const PROTOCOL_VERSION = 1

/** The longest chat message the server accepts, in UTF-8 bytes (`MAX_CHAT_BYTES`). */
export const MAX_CHAT_BYTES = 4 * 1024

/** The longest display name the server accepts, in characters (`MAX_NAME_CHARS`). */
export const MAX_NAME_CHARS = 64

/** The longest string field the page takes from a server message: a run's output chunk or
 * a chat text is far shorter; anything longer is cut, not trusted. */
const MAX_FIELD_CHARS = 64 * 1024

/** The most participants a message may list: the server's default connection cap. */
const MAX_PARTICIPANTS = 10_000

/** The longest seat or link id the page takes: the server's are far shorter. */
const MAX_ID_CHARS = 200

/** The most links or audit entries one message may list: far more than a room keeps, and
 * few enough that a hostile list cannot make the page draw a million rows. */
const MAX_LIST_ITEMS = 10_000

export type Role = 'reader' | 'writer' | 'host'

export type ErrorCode =
  | 'bad_request' | 'too_large' | 'unknown_message' | 'unsupported_version' | 'unauthorized'
  | 'forbidden' | 'not_found' | 'rate_limited' | 'invalid_update' | 'internal' | 'unavailable'

const ROLES: readonly Role[] = ['reader', 'writer', 'host']
const ERROR_CODES: readonly ErrorCode[] = [
  'bad_request', 'too_large', 'unknown_message', 'unsupported_version', 'unauthorized',
  'forbidden', 'not_found', 'rate_limited', 'invalid_update', 'internal', 'unavailable',
]

/** A person (or bot) connected to the room. */
export interface Participant {
  conn_id: number
  /** The seat this connection holds (a person's place in the room, which keeps its role
   * across reconnects); host messages name seats. */
  seat: string
  /** Whether sign-in verified the name; without accounts never: the name is what the
   * client said, made unique in the room. */
  verified: boolean
  name: string
  color: string
  role: Role
  client: string
  doc_client_id?: number
  companion: boolean
  /** The id of the link the seat came in through, when the server tells (the host's kick
   * then offers to revoke exactly that link). */
  link?: string
}

/** One chat message, as the room's `chat` array keeps it. */
export interface ChatEntry {
  id: string
  author: string
  conn_id: number
  text: string
  ts: number
}

/** A seat and the token that reconnects to it (`welcome.seat`). */
export interface SeatToken { id: string; token: string }

/** One join link of the room, as the host sees it (times in ms since the epoch). */
export interface LinkInfo {
  id: string
  role: Role
  url: string
  created_at: number
  expires_at: number
  max_uses: number | null
  uses: number
  revoked: boolean
  /** The one signed-in user it is for (`email:…`, `sub:…`, `user:ID` for the owner's own
   * link); null: anyone with the link. */
  for_user: string | null
}

/** What an audit entry records (`AuditKind`). */
export type AuditKind =
  | 'join' | 'leave' | 'role_changed' | 'kicked' | 'admitted' | 'refused' | 'link_created'
  | 'link_revoked' | 'approval_changed' | 'run_started'

const AUDIT_KINDS: readonly AuditKind[] = [
  'join', 'leave', 'role_changed', 'kicked', 'admitted', 'refused', 'link_created',
  'link_revoked', 'approval_changed', 'run_started',
]

/** One entry of the room's audit trail. */
export interface AuditEntry { ts: number; kind: AuditKind; actor: string; subject: string; detail: string }

/** How the ghost answers a request (`GhostMode`). */
export type GhostMode = 'explain' | 'suggest' | 'write'
const GHOST_MODES: readonly GhostMode[] = ['explain', 'suggest', 'write']

/** The part of a file a request is about (`GhostSelection`); lines are 1-based. */
export interface GhostSelection { path: string; start_line: number; end_line: number; text?: string }

/** What a person asks the ghost (`GhostCommand`, tagged by `kind`). */
export type GhostCommand =
  | { kind: 'ask'; text: string; mode?: GhostMode; selection?: GhostSelection }
  | { kind: 'accept'; suggestion: number }
  | { kind: 'reject'; suggestion: number }
  | { kind: 'cancel'; request?: number }
  | { kind: 'undo' }

/** Where a ghost request stands (`GhostRequestStatus`). */
export type GhostRequestStatus = 'working' | 'done' | 'failed' | 'cancelled'
const GHOST_STATUSES: readonly GhostRequestStatus[] = ['working', 'done', 'failed', 'cancelled']

/** One request as the ghost publishes it. */
export interface GhostRequest { id: number; asker: string; mode: GhostMode; text: string; status: GhostRequestStatus; received_chars: number; message: string | null }

/** One proposed edit: `search` replaced by `replace` in `path`. */
export interface GhostEdit { path: string; search: string; replace: string }

/** A change waiting for a writer. */
export interface GhostSuggestion { id: number; asker: string; files: string[]; edits: GhostEdit[]; omitted: boolean }

/** A ghost's published state (`GhostState`). */
export interface GhostState { requests: GhostRequest[]; suggestions: GhostSuggestion[] }

/** The most requests, suggestions and edits a ghost state may list (`MAX_GHOST_*`). */
const MAX_GHOST_ITEMS = 64

/** What the page may say to the server. */
export type ClientMessage =
  | { type: 'auth'; token: string }
  | { type: 'hello'; version: number; name: string; color?: string; client?: string; doc_client_id?: number; companion?: boolean }
  | { type: 'chat'; text: string }
  | { type: 'list_participants' }
  | { type: 'ping'; nonce: number }
  | { type: 'run'; path: string; language?: string }
  | { type: 'input'; run_id: string; data: string; eof?: boolean }
  | { type: 'stop'; run_id: string }
  | { type: 'debug_start'; path: string; language?: string }
  | { type: 'dap'; debug_id: string; message: Record<string, unknown> }
  | { type: 'set_role'; seat: string; role: Role }
  | { type: 'kick'; seat: string }
  | { type: 'admit'; seat: string }
  | { type: 'refuse'; seat: string }
  | { type: 'set_approval'; on: boolean }
  | { type: 'create_link'; role: Role; expires_in_secs?: number; max_uses?: number; for_user?: string }
  | { type: 'list_links' }
  | { type: 'revoke_link'; link: string }
  | { type: 'audit'; limit?: number }
  | { type: 'ghost'; command: GhostCommand }
  | { type: 'ghost_state'; state: GhostState }

/** What the server may say to the page. */
export type ServerMessage =
  | { type: 'welcome'; version: number; conn_id: number; role: Role; participants: Participant[]; seat: SeatToken; name: string; approval: boolean }
  | { type: 'participant_joined'; participant: Participant }
  | { type: 'participant_left'; conn_id: number }
  | { type: 'participants'; participants: Participant[] }
  | { type: 'chat'; entry: ChatEntry }
  | { type: 'pong'; nonce: number }
  | { type: 'error'; code: ErrorCode; message: string; responding_to?: number }
  | { type: 'run_started'; run_id: string; path: string; language: string; by: number; responding_to?: number }
  | { type: 'run_queued'; run_id: string; path: string; language: string; by: number; position: number; limit: string; debug: boolean; responding_to?: number }
  | { type: 'run_output'; run_id: string; stream: 'compile' | 'stdout' | 'stderr'; data: string }
  | { type: 'run_exited'; run_id: string; stage: string; code: number | null; duration_ms: number; limit: string | null; error: string | null }
  | { type: 'debug_started'; debug_id: string; path: string; language: string; by: number }
  | { type: 'debug_joined'; debug_id: string; path: string; language: string; by: number; capabilities: unknown; work_dir: string; aliases: Record<string, string>; responding_to?: number }
  | { type: 'dap'; debug_id: string; message: Record<string, unknown> }
  | { type: 'debug_breakpoints'; debug_id: string; path: string; lines: number[] }
  | { type: 'debug_ended'; debug_id: string; exit_code: number | null; error: string | null }
  | { type: 'role_changed'; seat: string; role: Role; by: string; responding_to?: number }
  | { type: 'kicked'; by: string }
  | { type: 'seat_kicked'; seat: string; by: string; responding_to?: number }
  | { type: 'lobby'; message: string }
  | { type: 'join_request'; seat: string; name: string; client: string; verified: boolean }
  | { type: 'join_request_closed'; seat: string; admitted: boolean; by: string; responding_to?: number }
  | { type: 'refused'; message: string }
  | { type: 'approval_changed'; on: boolean; by: string; responding_to?: number }
  | { type: 'links'; links: LinkInfo[]; responding_to?: number }
  | { type: 'audit_log'; entries: AuditEntry[]; responding_to?: number }
  | { type: 'ghost'; from: number; name: string; role: Role; command: GhostCommand; responding_to?: number }
  | { type: 'ghost_state'; from: number; state: GhostState }

/** Every `type` a server message may have: the closed set. */
export const SERVER_MESSAGE_TYPES = [
  'welcome', 'participant_joined', 'participant_left', 'participants', 'chat', 'pong', 'error',
  'run_started', 'run_queued', 'run_output', 'run_exited', 'debug_started', 'debug_joined', 'dap',
  'debug_breakpoints', 'debug_ended', 'role_changed', 'kicked', 'seat_kicked', 'lobby',
  'join_request', 'join_request_closed', 'refused', 'approval_changed', 'links', 'audit_log',
  'ghost', 'ghost_state',
] as const

/** Every `type` a client message may have. */
export const CLIENT_MESSAGE_TYPES = [
  'hello', 'chat', 'list_participants', 'ping', 'run', 'input', 'stop', 'debug_start', 'dap',
  'auth', 'set_role', 'kick', 'admit', 'refuse', 'set_approval', 'create_link', 'list_links',
  'revoke_link', 'audit', 'ghost', 'ghost_state',
] as const

/** A server message that does not have the shape this page knows. */
export class ProtocolError extends Error {
  constructor (message: string) {
    super(`the server sent a message this page cannot read: ${message}`)
    this.name = 'ProtocolError'
  }
}

type Json = Record<string, unknown>

function object (v: unknown, what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProtocolError(`${what} is not an object`)
  return v as Json
}

function str (o: Json, key: string, max = MAX_FIELD_CHARS): string {
  const v = o[key]
  if (typeof v !== 'string') throw new ProtocolError(`${key} is not a string`)
  return v.length > max ? v.slice(0, max) : v
}

function optStr (o: Json, key: string): string | null {
  return o[key] == null ? null : str(o, key)
}

function uint (o: Json, key: string): number {
  const v = o[key]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ProtocolError(`${key} is not a whole number`)
  return v
}

function int (o: Json, key: string): number | null {
  const v = o[key]
  if (v == null) return null
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new ProtocolError(`${key} is not an integer`)
  return v
}

function optUint (o: Json, key: string): number | undefined {
  return o[key] == null ? undefined : uint(o, key)
}

function oneOf<T extends string> (o: Json, key: string, allowed: readonly T[]): T {
  const v = o[key]
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw new ProtocolError(`${key} is not one of ${allowed.join(', ')}`)
  return v as T
}

/** `#rrggbb`, or a neutral grey for anything else (colours end up in styles). */
export function safeColor (v: unknown): string {
  return typeof v === 'string' && /^#[0-9a-fA-F]{6}$/.test(v) ? v : '#888888'
}

function participant (v: unknown): Participant {
  const o = object(v, 'participant')
  return {
    conn_id: uint(o, 'conn_id'),
    seat: str(o, 'seat', MAX_ID_CHARS),
    verified: o.verified === true,
    name: str(o, 'name', MAX_NAME_CHARS),
    color: safeColor(o.color),
    role: oneOf(o, 'role', ROLES),
    client: str(o, 'client', MAX_NAME_CHARS),
    doc_client_id: optUint(o, 'doc_client_id'),
    companion: o.companion === true,
    link: o.link == null ? undefined : str(o, 'link', MAX_ID_CHARS),
  }
}

function participants (o: Json): Participant[] {
  const v = o.participants
  if (!Array.isArray(v)) throw new ProtocolError('participants is not a list')
  if (v.length > MAX_PARTICIPANTS) throw new ProtocolError(`more than ${MAX_PARTICIPANTS} participants`)
  return v.map(participant)
}

/** A chat entry from the room's `chat` array or a `chat` message, or null if it has another
 * shape (the array is shared data: a stock Yjs client could have pushed anything). */
export function readChatEntry (v: unknown): ChatEntry | null {
  try {
    const o = object(v, 'chat entry')
    return {
      id: str(o, 'id', 200),
      author: str(o, 'author', MAX_NAME_CHARS),
      conn_id: uint(o, 'conn_id'),
      text: str(o, 'text', MAX_CHAT_BYTES),
      ts: uint(o, 'ts'),
    }
  } catch {
    return null
  }
}

function bool (o: Json, key: string): boolean {
  const v = o[key]
  if (typeof v !== 'boolean') throw new ProtocolError(`${key} is not true or false`)
  return v
}

function list<T> (o: Json, key: string, item: (v: unknown) => T): T[] {
  const v = o[key]
  if (!Array.isArray(v)) throw new ProtocolError(`${key} is not a list`)
  if (v.length > MAX_LIST_ITEMS) throw new ProtocolError(`${key} has more than ${MAX_LIST_ITEMS} items`)
  return v.map(item)
}

function linkInfo (v: unknown): LinkInfo {
  const o = object(v, 'link')
  return {
    id: str(o, 'id', MAX_ID_CHARS),
    role: oneOf(o, 'role', ROLES),
    url: str(o, 'url', 4096),
    created_at: uint(o, 'created_at'),
    expires_at: uint(o, 'expires_at'),
    max_uses: optUint(o, 'max_uses') ?? null,
    uses: uint(o, 'uses'),
    revoked: bool(o, 'revoked'),
    for_user: optStr(o, 'for_user'),
  }
}

function auditEntry (v: unknown): AuditEntry {
  const o = object(v, 'audit entry')
  return { ts: uint(o, 'ts'), kind: oneOf(o, 'kind', AUDIT_KINDS), actor: str(o, 'actor', 200), subject: str(o, 'subject', 200), detail: str(o, 'detail', 4096) }
}

function boundedList<T> (o: Json, key: string, item: (v: unknown) => T): T[] {
  const v = o[key]
  if (!Array.isArray(v)) throw new ProtocolError(`${key} is not a list`)
  if (v.length > MAX_GHOST_ITEMS) throw new ProtocolError(`${key} has more than ${MAX_GHOST_ITEMS} items`)
  return v.map(item)
}

function ghostCommand (v: unknown): GhostCommand {
  const o = object(v, 'command')
  switch (o.kind) {
    case 'ask': {
      const cmd: GhostCommand = { kind: 'ask', text: str(o, 'text', MAX_CHAT_BYTES) }
      if (o.mode != null) cmd.mode = oneOf(o, 'mode', GHOST_MODES)
      if (o.selection != null) {
        const s = object(o.selection, 'selection')
        cmd.selection = { path: str(s, 'path', 1024), start_line: uint(s, 'start_line'), end_line: uint(s, 'end_line'), text: s.text == null ? undefined : str(s, 'text', 16 * 1024) }
      }
      return cmd
    }
    case 'accept':
    case 'reject':
      return { kind: o.kind, suggestion: uint(o, 'suggestion') }
    case 'cancel':
      return { kind: 'cancel', request: optUint(o, 'request') }
    case 'undo':
      return { kind: 'undo' }
    default:
      throw new ProtocolError(`unknown ghost command ${JSON.stringify(String(o.kind)).slice(0, 60)}`)
  }
}

function ghostRequest (v: unknown): GhostRequest {
  const o = object(v, 'ghost request')
  return { id: uint(o, 'id'), asker: str(o, 'asker', 200), mode: oneOf(o, 'mode', GHOST_MODES), text: str(o, 'text', MAX_CHAT_BYTES), status: oneOf(o, 'status', GHOST_STATUSES), received_chars: optUint(o, 'received_chars') ?? 0, message: optStr(o, 'message') }
}

function ghostEdit (v: unknown): GhostEdit {
  const o = object(v, 'ghost edit')
  return { path: str(o, 'path', 1024), search: str(o, 'search'), replace: str(o, 'replace') }
}

function ghostSuggestion (v: unknown): GhostSuggestion {
  const o = object(v, 'ghost suggestion')
  return { id: uint(o, 'id'), asker: str(o, 'asker', 200), files: boundedList(o, 'files', f => { if (typeof f !== 'string') throw new ProtocolError('a file is not a string'); return f.slice(0, 1024) }), edits: boundedList(o, 'edits', ghostEdit), omitted: o.omitted === true }
}

/** Reads a ghost's published state. */
export function ghostState (v: unknown): GhostState {
  const o = object(v, 'state')
  return { requests: boundedList(o, 'requests', ghostRequest), suggestions: boundedList(o, 'suggestions', ghostSuggestion) }
}

function base (o: Json) {
  return { path: str(o, 'path', 4096), language: str(o, 'language', 100), by: uint(o, 'by') }
}

/** Parses one server message (already JSON-decoded). */
export function parseServerMessage (json: unknown): ServerMessage {
  const o = object(json, 'the message')
  const type = o.type
  const responding = optUint(o, 'responding_to')
  switch (type) {
    case 'welcome': {
      const head = { type, version: uint(o, 'version'), conn_id: uint(o, 'conn_id'), role: oneOf(o, 'role', ROLES), participants: participants(o) }
      const seat = object(o.seat, 'seat')
      return {
        ...head,
        seat: { id: str(seat, 'id', MAX_ID_CHARS), token: str(seat, 'token', 4096) },
        name: str(o, 'name', MAX_NAME_CHARS),
        approval: bool(o, 'approval'),
      }
    }
    case 'participant_joined':
      return { type, participant: participant(o.participant) }
    case 'participant_left':
      return { type, conn_id: uint(o, 'conn_id') }
    case 'participants':
      return { type, participants: participants(o) }
    case 'chat': {
      const entry = readChatEntry(o.entry)
      if (!entry) throw new ProtocolError('chat entry has another shape')
      return { type, entry }
    }
    case 'pong':
      return { type, nonce: uint(o, 'nonce') }
    case 'error':
      return { type, code: oneOf(o, 'code', ERROR_CODES), message: str(o, 'message', 4096), responding_to: responding }
    case 'run_started':
      return { type, run_id: str(o, 'run_id', 200), ...base(o), responding_to: responding }
    case 'run_queued':
      return { type, run_id: str(o, 'run_id', 200), ...base(o), position: uint(o, 'position'), limit: str(o, 'limit', 100), debug: o.debug === true, responding_to: responding }
    case 'run_output':
      return { type, run_id: str(o, 'run_id', 200), stream: oneOf(o, 'stream', ['compile', 'stdout', 'stderr'] as const), data: str(o, 'data') }
    case 'run_exited':
      return { type, run_id: str(o, 'run_id', 200), stage: str(o, 'stage', 20), code: int(o, 'code'), duration_ms: uint(o, 'duration_ms'), limit: optStr(o, 'limit'), error: optStr(o, 'error') }
    case 'debug_started':
      return { type, debug_id: str(o, 'debug_id', 200), ...base(o) }
    case 'debug_joined': {
      const aliases: Record<string, string> = {}
      for (const [k, v] of Object.entries(object(o.aliases ?? {}, 'aliases'))) if (typeof v === 'string') aliases[k] = v
      return { type, debug_id: str(o, 'debug_id', 200), ...base(o), capabilities: o.capabilities, work_dir: str(o, 'work_dir', 4096), aliases, responding_to: responding }
    }
    case 'dap':
      return { type, debug_id: str(o, 'debug_id', 200), message: object(o.message, 'message') }
    case 'debug_breakpoints': {
      const lines = o.lines
      if (!Array.isArray(lines) || !lines.every(l => Number.isSafeInteger(l) && l > 0)) throw new ProtocolError('lines is not a list of line numbers')
      return { type, debug_id: str(o, 'debug_id', 200), path: str(o, 'path', 4096), lines: lines as number[] }
    }
    case 'debug_ended':
      return { type, debug_id: str(o, 'debug_id', 200), exit_code: int(o, 'exit_code'), error: optStr(o, 'error') }
    case 'role_changed':
      return { type, seat: str(o, 'seat', MAX_ID_CHARS), role: oneOf(o, 'role', ROLES), by: str(o, 'by', 200), responding_to: responding }
    case 'kicked':
      return { type, by: str(o, 'by', 200) }
    case 'seat_kicked':
      return { type, seat: str(o, 'seat', MAX_ID_CHARS), by: str(o, 'by', 200), responding_to: responding }
    case 'lobby':
    case 'refused':
      return { type, message: str(o, 'message', 4096) }
    case 'join_request':
      return { type, seat: str(o, 'seat', MAX_ID_CHARS), name: str(o, 'name', MAX_NAME_CHARS), client: str(o, 'client', MAX_NAME_CHARS), verified: o.verified === true }
    case 'join_request_closed':
      return { type, seat: str(o, 'seat', MAX_ID_CHARS), admitted: bool(o, 'admitted'), by: str(o, 'by', 200), responding_to: responding }
    case 'approval_changed':
      return { type, on: bool(o, 'on'), by: str(o, 'by', 200), responding_to: responding }
    case 'links':
      return { type, links: list(o, 'links', linkInfo), responding_to: responding }
    case 'audit_log':
      return { type, entries: list(o, 'entries', auditEntry), responding_to: responding }
    case 'ghost':
      return { type, from: uint(o, 'from'), name: str(o, 'name', MAX_NAME_CHARS), role: oneOf(o, 'role', ROLES), command: ghostCommand(o.command), responding_to: responding }
    case 'ghost_state':
      return { type, from: uint(o, 'from'), state: ghostState(o.state) }
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(String(type)).slice(0, 60)}`)
  }
}

/** The UTF-8 length of a string, as the server counts chat bytes. */
export function utf8Length (s: string): number {
  return new TextEncoder().encode(s).length
}
