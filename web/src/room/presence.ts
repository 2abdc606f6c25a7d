/**
 * mesh's awareness shape (`protocol/src/awareness.rs`), which every mesh client publishes
 * and reads: `{user: {name, color}, cursor: {path, anchor, head, selections?}, view: {path,
 * start_line, end_line}, following?: conn_id}`, offsets in UTF-16 code units of the file's text (what CodeMirror
 * and Yjs count in, so no conversion is needed in the browser).
 *
 * Reading is lenient, as in Rust: a part that does not have mesh's shape (y-codemirror's
 * relative cursors, a bot's own fields) is left out, never an error. It is also bounded: a
 * state is untrusted input, so names are cut and selection lists capped.
 */
import { MAX_NAME_CHARS, safeColor } from '../net/messages.js'

/** The most selections of one participant the page draws. */
export const MAX_REMOTE_SELECTIONS = 64

/** The longest room path the page takes from a state. */
const MAX_PATH_CHARS = 4096

export interface PresenceUser { name: string; color: string | null }
export interface PresenceCursor { path: string; anchor: number; head: number; selections: Array<[number, number]> }
export interface PresenceView { path: string; start_line: number | null; end_line: number | null }
export interface PresenceState {
  user: PresenceUser | null
  cursor: PresenceCursor | null
  view: PresenceView | null
  /** The connection id of whom this client follows. */
  following: number | null
}

const isOffset = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isPath = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_PATH_CHARS

function readUser (v: unknown): PresenceUser | null {
  if (!isObject(v) || typeof v.name !== 'string') return null
  return {
    name: v.name.slice(0, MAX_NAME_CHARS),
    color: typeof v.color === 'string' && /^#[0-9a-fA-F]{6}$/.test(v.color) ? v.color : null,
  }
}

function readCursor (v: unknown): PresenceCursor | null {
  if (!isObject(v) || !isPath(v.path) || !isOffset(v.anchor) || !isOffset(v.head)) return null
  let selections: Array<[number, number]> = []
  if (v.selections != null) {
    if (!Array.isArray(v.selections)) return null
    for (const s of v.selections.slice(0, MAX_REMOTE_SELECTIONS)) {
      if (!Array.isArray(s) || s.length !== 2 || !isOffset(s[0]) || !isOffset(s[1])) return null
      selections.push([s[0], s[1]])
    }
  }
  if (selections.length === 0) selections = [[v.anchor, v.head]]
  return { path: v.path, anchor: v.anchor, head: v.head, selections }
}

function readView (v: unknown): PresenceView | null {
  if (!isObject(v) || !isPath(v.path)) return null
  const line = (x: unknown) => (isOffset(x) ? x : null)
  return { path: v.path, start_line: line(v.start_line), end_line: line(v.end_line) }
}

/** Reads a state as any client published it: the parts with mesh's shape. */
export function readPresence (state: unknown): PresenceState {
  if (!isObject(state)) return { user: null, cursor: null, view: null, following: null }
  return {
    user: readUser(state.user),
    cursor: readCursor(state.cursor),
    view: readView(state.view),
    following: isOffset(state.following) ? state.following : null,
  }
}

/** The cursor part to publish for a selection in the file at `path`. */
export function cursorState (path: string, ranges: ReadonlyArray<{ anchor: number; head: number }>, main: number): PresenceCursor {
  const ordered = [ranges[main], ...ranges.filter((_, i) => i !== main)].slice(0, MAX_REMOTE_SELECTIONS)
  return {
    path,
    anchor: ordered[0].anchor,
    head: ordered[0].head,
    selections: ordered.map(r => [r.anchor, r.head] as [number, number]),
  }
}

/** A remote participant's cursor in one file, ready to draw. */
export interface RemoteCursor {
  clientId: number
  name: string
  color: string
  head: number
  ranges: Array<[number, number]>
}

/** Everyone else's cursors in the file at `path`, from the awareness states. Names and
 * colours come from the state's `user`, or from the participant list when the state has
 * none (matched by the Yjs client id each participant announced). */
export function remoteCursors (
  states: ReadonlyMap<number, unknown>,
  self: number,
  path: string,
  byClientId: (clientId: number) => { name: string; color: string } | undefined,
): RemoteCursor[] {
  const out: RemoteCursor[] = []
  for (const [clientId, raw] of states) {
    if (clientId === self) continue
    const state = readPresence(raw)
    if (!state.cursor || state.cursor.path !== path) continue
    const known = byClientId(clientId)
    out.push({
      clientId,
      name: state.user?.name ?? known?.name ?? 'someone',
      color: safeColor(state.user?.color ?? known?.color),
      head: state.cursor.head,
      ranges: state.cursor.selections,
    })
  }
  return out
}

/** `cursors` with every offset kept inside a text of `length` UTF-16 units: offsets from
 * awareness are untrusted and may be stale by a few edits. */
export function clampCursors (cursors: readonly RemoteCursor[], length: number): RemoteCursor[] {
  const clamp = (pos: number) => Math.max(0, Math.min(pos, length))
  return cursors.map(c => ({
    ...c,
    head: clamp(c.head),
    ranges: c.ranges.map(([a, h]) => [clamp(a), clamp(h)] as [number, number]),
  }))
}

/** Whether two lists of remote cursors draw the same (same people, names, colours, places,
 * in the same order). */
export function sameCursors (a: readonly RemoteCursor[], b: readonly RemoteCursor[]): boolean {
  return a.length === b.length && a.every((c, i) => {
    const d = b[i]
    return c.clientId === d.clientId && c.name === d.name && c.color === d.color && c.head === d.head &&
      c.ranges.length === d.ranges.length && c.ranges.every(([x, y], j) => x === d.ranges[j][0] && y === d.ranges[j][1])
  })
}
