/**
 * A local run's output on its way out of the worker, counted against the output limit in
 * UTF-8 bytes like the server's runs. Normally it goes through the output ring
 * (local-ring.ts) as records ({@link encodeRecords}, {@link RecordDecoder}) that the page
 * reads every {@link FLUSH_MS}: one delivery per stream per read, however the program
 * printed. Where the page is not cross-origin isolated it goes in batched messages
 * ({@link OutputBatcher}). Sans-IO: the caller passes the time and the function that
 * sends, so the rules are tested without a worker.
 */

/** How often the page takes a run's output (and how long a batch waits in the worker
 * without the ring): within a frame or two of being printed, and a loop that prints per
 * character costs one delivery per 25 ms. */
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
 * Output waiting in the worker, without the ring. {@link write} says when the batch is due:
 * at once when nothing went out for {@link FLUSH_MS} (so a line printed before a long
 * computation is not held back by it), else once the batch is that old or large. The caller
 * then calls {@link flush}, and also flushes on a timer and before the program blocks.
 */
export class OutputBatcher {
  private chunks: OutputChunk[] = []
  private bytes = 0
  private lastSent = -Infinity
  readonly meter: OutputMeter

  constructor (private readonly send: (chunks: OutputChunk[]) => void, limitBytes: number) {
    this.meter = new OutputMeter(limitBytes)
  }

  /** Adds output printed at `now` (ms); returns `'limit'` once the output limit is hit
   * (what fit is kept; the caller stops the program), else whether a flush is due. */
  write (stream: OutputStream, text: string, now: number): 'limit' | 'due' | 'wait' {
    const kept = this.meter.take(text)
    if (kept) {
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
    return this.chunks.length > 0 && (this.bytes >= FLUSH_BYTES || now - this.lastSent >= FLUSH_MS)
  }

  /** Sends what is waiting, if anything (`now` starts the next {@link FLUSH_MS}). */
  flush (now: number): void {
    if (this.chunks.length === 0) return
    this.lastSent = now
    const chunks = this.chunks
    this.chunks = []
    this.bytes = 0
    this.send(chunks)
  }
}

/** The most payload bytes in one output record: far below the output ring's size, so a
 * record always fits once the page has read. */
export const MAX_RECORD_BYTES = 16 * 1024

/** A record's head: the stream (1 byte: 1 stdout, 2 stderr) and the payload's length (4
 * bytes, little-endian). */
const RECORD_HEAD_BYTES = 5

/** `text` on `stream` as output records, each at most {@link MAX_RECORD_BYTES} of payload
 * (a character may be split across two records: the reader decodes each stream as one
 * byte stream). */
export function encodeRecords (stream: OutputStream, text: string): Uint8Array[] {
  const bytes = new TextEncoder().encode(text)
  const out: Uint8Array[] = []
  for (let at = 0; at < bytes.length; at += MAX_RECORD_BYTES) {
    const part = bytes.subarray(at, Math.min(bytes.length, at + MAX_RECORD_BYTES))
    const rec = new Uint8Array(RECORD_HEAD_BYTES + part.length)
    rec[0] = stream === 'stdout' ? 1 : 2
    new DataView(rec.buffer).setUint32(1, part.length, true)
    rec.set(part, RECORD_HEAD_BYTES)
    out.push(rec)
  }
  return out
}

/**
 * Turns bytes read from the output ring back into chunks: records may arrive cut anywhere
 * (the rest waits for the next read), each stream is decoded as its own UTF-8 stream, and
 * neighbouring pieces of one stream come out as one chunk. A record with an unknown stream
 * or a length over the bound means the worker is not ours to trust: {@link push} throws.
 */
export class RecordDecoder {
  private rest: Uint8Array = new Uint8Array(0)
  private readonly decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() }

  /** The chunks completed by `bytes`. */
  push (bytes: Uint8Array): OutputChunk[] {
    const buf = this.rest.length ? concat(this.rest, bytes) : bytes
    const chunks: OutputChunk[] = []
    let at = 0
    while (buf.length - at >= RECORD_HEAD_BYTES) {
      const tag = buf[at]
      const len = new DataView(buf.buffer, buf.byteOffset + at + 1, 4).getUint32(0, true)
      if ((tag !== 1 && tag !== 2) || len > MAX_RECORD_BYTES) throw new Error(`the run's output is garbled (record tag ${tag}, length ${len})`)
      if (buf.length - at - RECORD_HEAD_BYTES < len) break
      const stream: OutputStream = tag === 1 ? 'stdout' : 'stderr'
      const text = this.decoders[stream].decode(buf.subarray(at + RECORD_HEAD_BYTES, at + RECORD_HEAD_BYTES + len), { stream: true })
      at += RECORD_HEAD_BYTES + len
      if (!text) continue
      const last = chunks[chunks.length - 1]
      if (last?.stream === stream) last.text += text
      else chunks.push({ stream, text })
    }
    this.rest = buf.slice(at)
    return chunks
  }
}

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}
