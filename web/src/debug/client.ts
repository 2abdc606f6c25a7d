/**
 * A thin DAP client for the page: requests with the page's own `seq`, responses matched by
 * `request_seq`, a timeout on each, events handed to one listener. It does no IO of its own:
 * {@link DapClient.receive} takes what the server relayed, and the `send` it was given puts a
 * request on the room socket (as mesh's `dap` message). That keeps every rule here testable
 * in Node without a socket or a browser.
 *
 * The debug hub on the server re-sequences: it gives each upstream request its own `seq` and
 * answers the page with `request_seq` equal to the page's `seq`, so the page's numbering is
 * its own affair (docs/debugging.md).
 */
import { readDapMessage, type DapEvent } from './dap.js'

/** How long a request waits for its answer. The hub answers for the adapter after 30 s
 * (`REQUEST_TIMEOUT` in server/src/debug/hub.rs); a little more covers the trip, so the
 * page gives up on its own only when the server itself did not answer. */
export const DAP_REQUEST_TIMEOUT_MS = 35_000

/** The most requests waiting at once: a panel sends a handful per stop; more means the
 * answers stopped coming, and the user is told rather than queue without end. */
export const MAX_PENDING_REQUESTS = 64

/** A request that failed: the adapter's or the hub's message, or the page's own reason. */
export class DapError extends Error {
  constructor (readonly command: string, message: string) {
    super(message)
    this.name = 'DapError'
  }
}

interface Waiting {
  command: string
  /** The id the transport gave the message that carried it (mesh's request id). */
  carrier: number | null
  resolve: (body: Record<string, unknown>) => void
  reject: (e: DapError) => void
  timer: unknown
}

/** Timers, injectable for tests. */
export interface Timers {
  set: (fn: () => void, ms: number) => unknown
  clear: (t: unknown) => void
}

const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
}

export class DapClient {
  private seq = 1
  private readonly pending = new Map<number, Waiting>()
  private closed: string | null = null

  /**
   * @param send puts one DAP request on the wire and returns the id of the message that
   *   carried it (the server names it if it refuses the message), or null when it could not
   *   be sent (the socket is closed); it throws when the message is over the size limit
   * @param onEvent every event the adapter (or the hub) sends
   */
  constructor (
    private readonly send: (message: Record<string, unknown>) => number | null,
    private readonly onEvent: (event: DapEvent) => void,
    private readonly timeoutMs = DAP_REQUEST_TIMEOUT_MS,
    private readonly timers: Timers = realTimers,
  ) {}

  /** Sends `command` and resolves with the response's body, or rejects with a
   * {@link DapError} naming why (refused, timed out, session over). */
  request (command: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (this.closed !== null) return Promise.reject(new DapError(command, this.closed))
    if (this.pending.size >= MAX_PENDING_REQUESTS) {
      return Promise.reject(new DapError(command, `${MAX_PENDING_REQUESTS} debugger requests are still unanswered; wait for them or stop and start again`))
    }
    const seq = this.seq++
    return new Promise((resolve, reject) => {
      const timer = this.timers.set(() => {
        this.pending.delete(seq)
        reject(new DapError(command, `the debugger did not answer ${command} within ${Math.round(this.timeoutMs / 1000)} s`))
      }, this.timeoutMs)
      const waiting: Waiting = { command, carrier: null, resolve, reject, timer }
      this.pending.set(seq, waiting)
      try {
        waiting.carrier = this.send({ seq, type: 'request', command, arguments: args })
      } catch (e) {
        // encodeMesh refuses a message over the server's limit, with the sizes.
        this.fail(seq, e instanceof Error ? e.message : String(e))
        return
      }
      if (waiting.carrier === null) this.fail(seq, 'not connected to the room; wait for the connection and try again')
    })
  }

  /** Takes one DAP message the server relayed. Anything that is not a response to a waiting
   * request or an event is dropped: it is untrusted input. */
  receive (raw: unknown): void {
    const msg = readDapMessage(raw)
    if (msg === null) return
    if (msg.type === 'event') {
      this.onEvent(msg)
      return
    }
    const w = this.pending.get(msg.request_seq)
    if (!w) return
    this.pending.delete(msg.request_seq)
    this.timers.clear(w.timer)
    if (msg.success) w.resolve(msg.body)
    else w.reject(new DapError(w.command, msg.message ?? `${w.command} failed`))
  }

  /** The server refused the message `carrier` (an `error` naming it): its request fails
   * with the server's words. Returns whether it was one of ours. */
  refused (carrier: number, message: string): boolean {
    for (const [seq, w] of this.pending) {
      if (w.carrier !== carrier) continue
      this.fail(seq, message)
      return true
    }
    return false
  }

  /** Fails every waiting request with `why`, and every later one. */
  close (why: string): void {
    this.closed = why
    for (const seq of [...this.pending.keys()]) this.fail(seq, why)
  }

  /** How many requests wait for their answer. */
  waiting (): number {
    return this.pending.size
  }

  private fail (seq: number, why: string): void {
    const w = this.pending.get(seq)
    if (!w) return
    this.pending.delete(seq)
    this.timers.clear(w.timer)
    w.reject(new DapError(w.command, why))
  }
}
