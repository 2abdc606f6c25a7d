/**
 * The breakpoints the page knows, per room path: the user's own (set in the gutter, kept
 * while no session runs and sent when one starts), the room's merged set (the hub's
 * `debug_breakpoints`: everyone's, this page's included), and the line the program is
 * stopped at. The gutter shows own lines one way and lines only others set another way.
 */

/** Breakpoints one person may set in one file: the hub refuses more
 * (`MAX_BREAKPOINTS_PER_FILE` in server/src/debug/hub.rs). */
export const MAX_BREAKPOINTS_PER_FILE = 500

/** What one file's gutter shows. */
export interface Marks {
  /** This page's breakpoints (1-based lines, ascending). */
  own: number[]
  /** Lines with someone else's breakpoint and none of ours. */
  others: number[]
  /** The line the selected frame is stopped at, in this file. */
  current: number | null
}

export class BreakpointStore {
  private readonly own = new Map<string, Set<number>>()
  private readonly merged = new Map<string, number[]>()
  private current: { path: string; line: number } | null = null
  private readonly listeners: Array<(path: string) => void> = []

  /** Calls `fn` with the path whose marks changed. */
  onChange (fn: (path: string) => void): void {
    this.listeners.push(fn)
  }

  marks (path: string): Marks {
    const own = [...(this.own.get(path) ?? [])].sort((a, b) => a - b)
    const mine = new Set(own)
    return {
      own,
      others: (this.merged.get(path) ?? []).filter(l => !mine.has(l)),
      current: this.current?.path === path ? this.current.line : null,
    }
  }

  /** The files with own breakpoints. */
  ownPaths (): string[] {
    return [...this.own.keys()]
  }

  /** This page's lines in `path`, ascending. */
  ownLines (path: string): number[] {
    return this.marks(path).own
  }

  /** Sets or clears our breakpoint at `line`; returns whether one is set now, or a reason
   * when it cannot be. */
  toggle (path: string, line: number): boolean | string {
    if (!Number.isSafeInteger(line) || line < 1) return `no line ${line}`
    const set = this.own.get(path) ?? new Set<number>()
    let on: boolean
    if (set.has(line)) {
      set.delete(line)
      on = false
    } else {
      if (set.size >= MAX_BREAKPOINTS_PER_FILE) return `at most ${MAX_BREAKPOINTS_PER_FILE} breakpoints per file; remove one first`
      set.add(line)
      on = true
    }
    if (set.size) this.own.set(path, set)
    else this.own.delete(path)
    this.changed(path)
    return on
  }

  /** Our breakpoints in `path` moved with an edit (lines inserted or removed above them). */
  move (path: string, lines: number[]): void {
    const next = new Set(lines.filter(l => Number.isSafeInteger(l) && l >= 1).slice(0, MAX_BREAKPOINTS_PER_FILE))
    const before = this.ownLines(path)
    if (before.length === next.size && before.every(l => next.has(l))) return
    if (next.size) this.own.set(path, next)
    else this.own.delete(path)
    this.changed(path)
  }

  /** The room's merged lines of `path` (the hub's `debug_breakpoints`). */
  setMerged (path: string, lines: readonly number[]): void {
    const clean = [...new Set(lines)].filter(l => Number.isSafeInteger(l) && l >= 1).sort((a, b) => a - b)
    if (clean.length) this.merged.set(path, clean.slice(0, 10 * MAX_BREAKPOINTS_PER_FILE))
    else this.merged.delete(path)
    this.changed(path)
  }

  /** The session ended: the room's marks go, ours stay for the next one. */
  clearMerged (): void {
    const paths = [...this.merged.keys()]
    this.merged.clear()
    for (const p of paths) this.changed(p)
  }

  /** The stopped line (null when running or over). */
  setCurrent (at: { path: string; line: number } | null): void {
    const before = this.current
    if (before?.path === at?.path && before?.line === at?.line) return
    this.current = at
    if (before) this.changed(before.path)
    if (at && at.path !== before?.path) this.changed(at.path)
  }

  private changed (path: string): void {
    for (const fn of this.listeners) fn(path)
  }
}
