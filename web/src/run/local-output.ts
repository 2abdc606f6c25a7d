/**
 * A local run's output on its way out of the worker: batched (a program that prints one
 * character at a time must not cost one message per character) and counted against the
 * output limit, in UTF-8 bytes like the server's runs. Sans-IO: the caller passes the time
 * and the function that sends a batch, so the rules are tested without a worker.
 */

/** Output waits at most this long in the worker: within a frame or two of being printed,
 * and a loop that prints per character costs one message per 25 ms. */
export const FLUSH_MS = 25

/** A batch this large goes at once, whatever its age: the panel gets output in steady
 * pieces and the worker never holds much. */
export const FLUSH_BYTES = 16 * 1024

/** Which stream a piece of output came on. */
export type OutputStream = 'stdout' | 'stderr'

/** A piece of output, in the order it was printed. */
export interface OutputChunk {
  stream: OutputStream
  text: string
}

/** The UTF-8 length of `text` (lone surrogates count as the three bytes of U+FFFD, as
 * TextEncoder writes them). */
export function utf8Length (text: string): number {
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4
      i++
    } else n += 3
  }
  return n
}

/** The longest start of `text` that is at most `maxBytes` in UTF-8, never cutting a
 * character in two. */
export function cutToBytes (text: string, maxBytes: number): string {
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3
    if (n + size > maxBytes) return text.slice(0, i)
    n += size
    if (pair) i++
  }
  return text
}

/**
 * Counts output against a limit: {@link take} returns the part of each piece that still
 * fits, and {@link over} turns true once something did not. Used on both sides: in the
 * worker (which stops the program) and in the page (which trusts nothing the worker says).
 */
export class OutputMeter {
  private used = 0
  private hit = false

  constructor (readonly limitBytes: number) {}

  /** The part of `text` within the limit ('' once it is reached). */
  take (text: string): string {
    if (this.hit) return ''
    const size = utf8Length(text)
    if (this.used + size <= this.limitBytes) {
      this.used += size
      return text
    }
    const kept = cutToBytes(text, this.limitBytes - this.used)
    this.used += utf8Length(kept)
    this.hit = true
    return kept
  }

  /** Whether some output did not fit. */
  get over (): boolean {
    return this.hit
  }

  /** UTF-8 bytes let through so far. */
  get bytes (): number {
    return this.used
  }
}

/**
 * Output waiting in the worker. {@link write} says when the batch is due (old or large
 * enough); the caller then calls {@link flush}, and also flushes on a timer when the program
 * is idle and before the program blocks on stdin, so a prompt shows before the wait.
 */
export class OutputBatcher {
  private chunks: OutputChunk[] = []
  private bytes = 0
  private since = 0
  readonly meter: OutputMeter

  constructor (private readonly send: (chunks: OutputChunk[]) => void, limitBytes: number) {
    this.meter = new OutputMeter(limitBytes)
  }

  /** Adds output printed at `now` (ms); returns `'limit'` once the output limit is hit
   * (what fit is kept; the caller stops the program), else whether a flush is due. */
  write (stream: OutputStream, text: string, now: number): 'limit' | 'due' | 'wait' {
    const kept = this.meter.take(text)
    if (kept) {
      if (this.chunks.length === 0) this.since = now
      const last = this.chunks[this.chunks.length - 1]
      if (last?.stream === stream) last.text += kept
      else this.chunks.push({ stream, text: kept })
      this.bytes += utf8Length(kept)
    }
    if (this.meter.over) return 'limit'
    return this.due(now) ? 'due' : 'wait'
  }

  /** Whether the batch should go now. */
  due (now: number): boolean {
    return this.chunks.length > 0 && (this.bytes >= FLUSH_BYTES || now - this.since >= FLUSH_MS)
  }

  /** Whether output is waiting. */
  get pending (): boolean {
    return this.chunks.length > 0
  }

  /** Sends what is waiting, if anything. */
  flush (): void {
    if (this.chunks.length === 0) return
    const chunks = this.chunks
    this.chunks = []
    this.bytes = 0
    this.send(chunks)
  }
}
