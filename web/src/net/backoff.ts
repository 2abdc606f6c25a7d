/**
 * When to try the room socket again after it closed: exponential backoff with jitter, reset
 * only by a connection that lasted (a server that accepts and then drops at once must not
 * be hammered). Pure: the clock and the randomness are inputs.
 */

/** The first retry waits about this long: short enough that a server restart feels instant. */
export const RETRY_BASE_MS = 250

/** No wait is longer: someone looking at "offline" should not wait more than this. */
export const RETRY_MAX_MS = 10_000

/** A connection open this long counts as good, and the next failure starts from the base. */
export const STABLE_CONNECTION_MS = 10_000

export class Backoff {
  private attempt = 0

  constructor (private readonly random: () => number = Math.random) {}

  /** The wait before the next try: between half and all of the current step. */
  next (): number {
    const step = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** this.attempt)
    if (step < RETRY_MAX_MS) this.attempt++
    return Math.round(step / 2 + this.random() * step / 2)
  }

  /** A connection closed after being open `openMs`: a long one resets the backoff. */
  closedAfter (openMs: number): void {
    if (openMs >= STABLE_CONNECTION_MS) this.attempt = 0
  }

  /** The browser says it is online again: try soon. */
  reset (): void {
    this.attempt = 0
  }
}

/** Close codes after which retrying cannot help (the token or the room is the problem):
 * 4401 unauthorized, 4403 forbidden, 4404 no such room, 4426 unsupported version. */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([4401, 4403, 4404, 4426])
