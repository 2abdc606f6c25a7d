/**
 * Byte rings in a SharedArrayBuffer between the page and a run's worker, one writer and one
 * reader each:
 *
 * - **stdin** (the page writes, the worker reads): Python's `input()` and JavaScript's
 *   `readFileSync(0)` must block inside the program until a line is typed, and a worker can
 *   only block on shared memory (`Atomics.wait`); a message could not arrive while the
 *   program holds the worker's thread.
 * - **output** (the worker writes, the page reads on its own timer): a program that prints
 *   and then loops forever holds the worker's thread, so no timer of the worker would ever
 *   send what it printed; the page takes it from the ring, also right before it terminates
 *   the worker, so nothing printed is lost to the time limit or Stop. A full ring blocks the
 *   program until the page has read: back-pressure, as a pipe gives.
 *
 * SharedArrayBuffer needs a cross-origin isolated page: mesh-server sends the room page with
 * COOP and COEP for that (server/src/web.rs).
 *
 * Layout: four 32-bit words, then the data. The writer owns `WRITTEN` and `CLOSED`, the
 * reader owns `READ`; both counters only grow (wrapping), so `WRITTEN - READ` is what waits
 * to be read. Every write, read and close bumps `SEQ`, the one word either side sleeps on, so
 * a wake-up is never missed between a check and a wait.
 */

/** The stdin ring's size: far more than anyone types ahead of a program; a paste larger
 * than this waits in the page and follows as the program reads. A power of two, so
 * positions map to slots with a mask even when the counters wrap. */
export const STDIN_BUFFER_BYTES = 64 * 1024

/** The output ring's size: what a program may print between two reads of the page (every
 * 25 ms) before it waits, several MB/s of output; a power of two. */
export const OUTPUT_BUFFER_BYTES = 256 * 1024

const WRITTEN = 0
const READ = 1
const CLOSED = 2
const SEQ = 3
const HEADER_BYTES = 4 * Int32Array.BYTES_PER_ELEMENT

/** How often a reader that must not block looks for input where the browser has no
 * `Atomics.waitAsync`: typing feels immediate, and an idle wait costs nothing to speak of. */
const POLL_MS = 20

/** `Atomics.waitAsync` (ES2024; the page's TypeScript library is ES2022). */
type WaitAsync = (a: Int32Array, index: number, value: number) => { async: boolean; value: Promise<unknown> | string }

/** A fresh, empty ring of `capacity` bytes (a power of two). */
export function createRing (capacity: number): SharedArrayBuffer {
  if (capacity <= 0 || (capacity & (capacity - 1)) !== 0) throw new Error(`a ring's capacity must be a power of two, not ${capacity}`)
  return new SharedArrayBuffer(HEADER_BYTES + capacity)
}

class Ring {
  protected readonly header: Int32Array
  protected readonly data: Uint8Array
  protected readonly mask: number

  constructor (buffer: SharedArrayBuffer) {
    this.header = new Int32Array(buffer, 0, 4)
    this.data = new Uint8Array(buffer, HEADER_BYTES)
    this.mask = this.data.length - 1
  }

  /** Bytes written and not yet read. */
  protected unread (): number {
    return (Atomics.load(this.header, WRITTEN) - Atomics.load(this.header, READ)) >>> 0
  }

  /** Tells the other side something changed. */
  protected wake (): void {
    Atomics.add(this.header, SEQ, 1)
    Atomics.notify(this.header, SEQ)
  }
}

/** The writing end. Only {@link writeAllBlocking} waits (in a worker). */
export class RingWriter extends Ring {
  /** Copies as much of `bytes` as fits; returns how many bytes went in. */
  write (bytes: Uint8Array): number {
    if (this.closed) return 0
    const n = Math.min(bytes.length, this.data.length - this.unread())
    const at = Atomics.load(this.header, WRITTEN)
    for (let i = 0; i < n; i++) this.data[(at + i) & this.mask] = bytes[i]
    Atomics.store(this.header, WRITTEN, (at + n) | 0)
    if (n > 0) this.wake()
    return n
  }

  /** Writes all of `bytes` at once, waiting (blocking the thread) until there is room, so the
   * reader never sees part of them. */
  writeAllBlocking (bytes: Uint8Array): void {
    if (bytes.length > this.data.length) throw new Error(`${bytes.length} bytes do not fit a ring of ${this.data.length}`)
    for (;;) {
      const seq = Atomics.load(this.header, SEQ)
      if (this.data.length - this.unread() >= bytes.length) {
        this.write(bytes)
        return
      }
      Atomics.wait(this.header, SEQ, seq)
    }
  }

  /** End of input: the reader gets what is left, then EOF. */
  close (): void {
    Atomics.store(this.header, CLOSED, 1)
    this.wake()
  }

  get closed (): boolean {
    return Atomics.load(this.header, CLOSED) === 1
  }
}

/** What a read that does not wait finds. */
export type TryRead = number | 'empty' | 'eof'

/** The reading end. Only {@link read} waits (in a worker). */
export class RingReader extends Ring {
  /** Takes what is there into `into` without waiting: the byte count, `'empty'`, or
   * `'eof'` once the writer closed and everything was read. */
  tryRead (into: Uint8Array): TryRead {
    const n = Math.min(into.length, this.unread())
    if (n === 0) return Atomics.load(this.header, CLOSED) === 1 && this.unread() === 0 ? 'eof' : 'empty'
    const at = Atomics.load(this.header, READ)
    for (let i = 0; i < n; i++) into[i] = this.data[(at + i) & this.mask]
    Atomics.store(this.header, READ, (at + n) | 0)
    this.wake()
    return n
  }

  /** Blocks the thread until bytes or EOF are there (only a worker may block); returns the
   * byte count, 0 at EOF. */
  read (into: Uint8Array): number {
    if (into.length === 0) return 0
    for (;;) {
      const seq = Atomics.load(this.header, SEQ)
      const got = this.tryRead(into)
      if (got === 'eof') return 0
      if (got !== 'empty') return got
      Atomics.wait(this.header, SEQ, seq)
    }
  }

  /** Settles when the writer wrote or closed since `tryRead` last found nothing (for readers
   * that must not block: a program's `process.stdin` listeners). */
  async changed (): Promise<void> {
    const seq = Atomics.load(this.header, SEQ)
    if (this.unread() > 0 || Atomics.load(this.header, CLOSED) === 1) return
    const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync
    if (!waitAsync) return new Promise(resolve => setTimeout(resolve, POLL_MS))
    const w = waitAsync(this.header, SEQ, seq)
    if (w.async) await w.value
  }
}

/**
 * The page's side of a run's stdin: takes typed text of any length, keeps what does not fit
 * yet, and moves it into the ring each time the worker says it read ({@link pump}). Closing
 * waits until everything typed before it went in.
 */
export class StdinFeeder {
  private queue: Uint8Array[] = []
  private closing = false
  private readonly encoder = new TextEncoder()

  constructor (private readonly writer: RingWriter) {}

  /** Queues `text` for the program; `eof` closes stdin after it. */
  push (text: string, eof = false): void {
    if (this.closing) return
    if (text) this.queue.push(this.encoder.encode(text))
    if (eof) this.closing = true
    this.pump()
  }

  /** Moves queued bytes into the ring while they fit; closes it once all went in. */
  pump (): void {
    while (this.queue.length) {
      const head = this.queue[0]
      const n = this.writer.write(head)
      if (n === head.length) this.queue.shift()
      else {
        this.queue[0] = head.subarray(n)
        return
      }
    }
    if (this.closing && !this.writer.closed) this.writer.close()
  }

  /** Bytes typed that have not reached the ring yet. */
  get waiting (): number {
    return this.queue.reduce((n, b) => n + b.length, 0)
  }
}
