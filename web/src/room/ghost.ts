/**
 * The ghost's state as the page keeps it, without the DOM: the newest state each ghost
 * published (dropped when it leaves), and a suggestion's edits as line diffs. The panel
 * (ui/ghost.ts) draws what this holds.
 */
import type { GhostEdit, GhostState } from '../net/messages.js'

/** One line of a diff: kept (` `), removed (`-`) or added (`+`). */
export interface DiffLine { op: ' ' | '-' | '+'; text: string }

/** The lines of a text, without the empty one after a final newline. */
function lines (text: string): string[] {
  const l = text.split('\n')
  if (l.length > 1 && l[l.length - 1] === '') l.pop()
  return text === '' ? [] : l
}

/** An edit as a diff: the lines both texts share at the start and the end are kept; what is
 * between them is removed then added. An edit is a function or two, so this reads as well
 * as a full line diff, and it is exact: applying it gives the replacement. */
export function diffEdit (edit: GhostEdit): DiffLine[] {
  const a = lines(edit.search)
  const b = lines(edit.replace)
  let head = 0
  while (head < a.length && head < b.length && a[head] === b[head]) head++
  let tail = 0
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++
  return [
    ...a.slice(0, head).map(text => ({ op: ' ' as const, text })),
    ...a.slice(head, a.length - tail).map(text => ({ op: '-' as const, text })),
    ...b.slice(head, b.length - tail).map(text => ({ op: '+' as const, text })),
    ...a.slice(a.length - tail).map(text => ({ op: ' ' as const, text })),
  ]
}

/** The states of the room's ghosts, by the connection that published them. */
export class GhostBoard {
  private readonly states = new Map<number, GhostState>()

  /** A ghost published its state (it replaces the previous one). */
  set (from: number, state: GhostState): void {
    this.states.set(from, state)
  }

  /** A connection left: its state goes with it. */
  left (connId: number): boolean {
    return this.states.delete(connId)
  }

  /** Every ghost's state, by connection id, in the order they first published. */
  all (): Array<[number, GhostState]> {
    return [...this.states.entries()]
  }

  /** Forgets everything (the page lost its connection; the server resends on rejoin). */
  clear (): void {
    this.states.clear()
  }
}
