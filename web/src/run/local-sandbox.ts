/**
 * What both run workers (local-js-worker.ts, local-py-worker.ts) share: taking the page's
 * start message, taking away what a program must not reach, and the program's output and
 * stdin.
 *
 * A dedicated worker has no DOM, no cookies of the page's documents, no localStorage and not
 * the page's room socket or URL (its `location` is the worker script's, without the token).
 * What a worker still reaches on its own is this origin: network requests, IndexedDB, the
 * Cache API, BroadcastChannel to the page's other contexts, origin-private files. mesh-server
 * sends each run worker its own Content-Security-Policy (server/src/web.rs): for JavaScript
 * `default-src 'none'` (no request and no script, of any origin, enforced by the browser);
 * for Python `connect-src 'self'`, since Pyodide fetches its own files from this origin, and
 * nothing from another. Before the program starts, {@link lockDown} deletes those globals
 * from the worker, so the program finds neither the network nor the origin's storage (for
 * Python's requests to this origin that is all there is: the policy would allow them, and a
 * reference Pyodide kept to `fetch` before the deletion would still work; they would carry
 * no token and no cookie). What remains: CPU and memory of this
 * browser (the time and output limits end a run; memory is not limited, the browser's own
 * per-tab limit is), the clock, `crypto`, and messages to the page, which reads them as
 * untrusted (local-protocol.ts).
 */
import { encodeRecords, OutputBatcher, OutputMeter, FLUSH_MS, type OutputStream } from './local-output.js'
import { parseStartMessage, type StartMessage, type WorkerMessage } from './local-protocol.js'
import { RingReader, RingWriter } from './local-ring.js'

// The worker's own timers, taken before a JavaScript program's runtime wraps the globals to
// count the program's timers (local-js-worker.ts): flushing output is not the program's.
const ownSetTimeout = globalThis.setTimeout.bind(globalThis)
const ownClearTimeout = globalThis.clearTimeout.bind(globalThis)

/** Globals of a worker that reach past it: the network, this origin's storage, other
 * contexts of the page, more workers. */
export const LOCKED_GLOBALS = [
  'fetch', 'XMLHttpRequest', 'WebSocket', 'WebSocketStream', 'EventSource', 'WebTransport',
  'importScripts', 'Worker', 'SharedWorker',
  'indexedDB', 'caches', 'BroadcastChannel', 'cookieStore',
  'postMessage', 'onmessage', 'onmessageerror',
] as const

/** Parts of `navigator` that reach storage or devices. */
const LOCKED_NAVIGATOR = ['storage', 'locks', 'usb', 'hid', 'serial', 'bluetooth'] as const

/** Deletes `name` from `obj` and its prototypes; where a browser will not let go, shadows it
 * with `undefined`. */
function remove (obj: object, name: string): void {
  for (let o: object | null = obj; o; o = Object.getPrototypeOf(o) as object | null) {
    if (Object.prototype.hasOwnProperty.call(o, name)) {
      try { delete (o as Record<string, unknown>)[name] } catch { /* not configurable */ }
    }
  }
  if (name in obj) {
    try { Object.defineProperty(obj, name, { value: undefined, writable: false, configurable: false }) } catch { /* as far as it goes */ }
  }
}

/** Takes away what a program must not reach (see the module doc). Call after the runtime
 * loaded and before the program starts. */
export function lockDown (): void {
  for (const name of LOCKED_GLOBALS) remove(globalThis, name)
  if (typeof navigator !== 'undefined') for (const name of LOCKED_NAVIGATOR) remove(navigator, name)
}

/** A program's output and stdin, inside the worker. */
export class WorkerIO {
  private readonly meter: OutputMeter
  /** The output ring, or, without one, batched messages. */
  private readonly ring: RingWriter | null
  private readonly batcher: OutputBatcher
  private readonly reader: RingReader | null
  private timer: ReturnType<typeof setTimeout> | null = null
  private ended = false
  private warnedNoStdin = false

  constructor (private readonly post: (m: WorkerMessage) => void, start: StartMessage) {
    this.meter = new OutputMeter(start.outputLimitBytes)
    this.ring = start.output ? new RingWriter(start.output) : null
    // The batcher's own meter is never reached: this one cuts first.
    this.batcher = new OutputBatcher(chunks => post({ type: 'output', chunks }), Infinity)
    this.reader = start.stdin ? new RingReader(start.stdin) : null
  }

  /** Output as the program prints it (into the ring, where the page takes it; a full ring
   * blocks until the page has read). Past the output limit the page is told and stops the
   * worker, and anything more is dropped. */
  write (stream: OutputStream, text: string): void {
    if (this.ended || !text) return
    const kept = this.meter.take(text)
    if (kept) {
      if (this.ring) for (const rec of encodeRecords(stream, kept)) this.ring.writeAllBlocking(rec)
      else this.batch(stream, kept)
    }
    if (this.meter.over) {
      this.flush()
      this.ended = true
      this.post({ type: 'output-limit' })
    }
  }

  private batch (stream: OutputStream, text: string): void {
    if (this.batcher.write(stream, text, performance.now()) === 'due') this.flush()
    else if (this.timer === null) {
      // A program that prints and then waits (a timer, stdin) still shows its output.
      this.timer = ownSetTimeout(() => { this.timer = null; this.flush() }, FLUSH_MS)
    }
  }

  /** Sends the output waiting in the worker (none waits with the ring). */
  flush (): void {
    if (this.timer !== null) { ownClearTimeout(this.timer); this.timer = null }
    this.batcher.flush(performance.now())
  }

  /** Reads stdin into `into`, blocking until text is typed; 0 at end of input. Output goes
   * out first, so a prompt shows before the wait. */
  readSync (into: Uint8Array): number {
    this.flush()
    if (!this.reader) return this.noStdin()
    return this.reader.read(into)
  }

  /** Reads what is there without blocking: bytes, `'empty'` or `'eof'`. */
  tryRead (into: Uint8Array): number | 'empty' | 'eof' {
    if (!this.reader) {
      this.noStdin()
      return 'eof'
    }
    return this.reader.tryRead(into)
  }

  /** Settles when stdin may have more (for readers that must not block). */
  async changed (): Promise<void> {
    this.flush()
    if (this.reader) await this.reader.changed()
  }

  private noStdin (): number {
    if (!this.warnedNoStdin) {
      this.warnedNoStdin = true
      this.write('stderr', '[mesh: this page is not cross-origin isolated, so a program running in the browser cannot read typed input; it reads end of input. Run it on the server to type into it.]\n')
      this.flush()
    }
    return 0
  }

  /** The program ended with `code`: the last output, then the exit. */
  exit (code: number): void {
    if (this.ended) return
    this.ended = true
    this.flush()
    this.post({ type: 'exit', code })
  }

  /** Whether the run ended (exit or output limit). */
  get done (): boolean {
    return this.ended
  }
}

/** Waits for the page's start message and hands it to `run`, with the one `postMessage`
 * the worker keeps for itself (taken before {@link lockDown} removes the global). A runtime
 * failure is reported as `failed`, not as the program's error. */
export function onStart (run: (start: StartMessage, post: (m: WorkerMessage) => void) => Promise<void> | void): void {
  const scope = globalThis as unknown as { postMessage: (m: unknown) => void; addEventListener: (t: string, f: (e: MessageEvent) => void, o?: { once: boolean }) => void }
  const post = scope.postMessage.bind(globalThis) as (m: WorkerMessage) => void
  scope.addEventListener('message', (e: MessageEvent) => {
    const start = parseStartMessage(e.data)
    if (!start) {
      post({ type: 'failed', error: 'the run worker got a start message it does not understand' })
      return
    }
    Promise.resolve()
      .then(() => run(start, post))
      .catch((err: unknown) => post({ type: 'failed', error: err instanceof Error ? err.message : String(err) }))
  }, { once: true })
}
