/**
 * The messages between the page and a local run's worker. The worker runs code someone in
 * the room wrote, so the page reads what it says as untrusted input: parsed into these
 * closed types, bounded, and anything else dropped ({@link parseWorkerMessage}).
 */
import type { OutputChunk } from './local-output.js'

/** The page's one message to a worker: what to run. */
export interface StartMessage {
  type: 'start'
  /** Room path → text, every file of the room (others may be imported). */
  files: Array<[string, string]>
  /** The room path of the file to run. */
  entry: string
  /** The stdin ring (local-ring.ts), or null when the page is not cross-origin isolated. */
  stdin: SharedArrayBuffer | null
  /** The output ring, or null (then output comes in `output` messages). */
  output: SharedArrayBuffer | null
  /** The output limit in UTF-8 bytes; the worker stops the program past it. */
  outputLimitBytes: number
  /** Where Pyodide's files are (Python only), an absolute URL ending in `/`. */
  pyodideUrl?: string
}

/** What a worker says. */
export type WorkerMessage =
  /** The runtime is loaded and the program starts now: its time limit starts. */
  | { type: 'started' }
  /** Output, when there is no output ring. */
  | { type: 'output'; chunks: OutputChunk[] }
  | { type: 'exit'; code: number }
  /** The program printed past the output limit; the worker stopped it. */
  | { type: 'output-limit' }
  /** The runtime itself failed (could not load), not the program. */
  | { type: 'failed'; error: string }

/** The most chunks one output message may carry (a batch is a few; this only bounds
 * garbage). */
export const MAX_CHUNKS_PER_MESSAGE = 1024

/** The longest runtime failure text the page shows. */
export const MAX_ERROR_CHARS = 2000

/** `data` as a {@link WorkerMessage}, or null when it is not one. */
export function parseWorkerMessage (data: unknown): WorkerMessage | null {
  if (typeof data !== 'object' || data === null) return null
  const m = data as Record<string, unknown>
  switch (m.type) {
    case 'started':
    case 'output-limit':
      return { type: m.type }
    case 'exit':
      return typeof m.code === 'number' && Number.isInteger(m.code) && Math.abs(m.code) < 2 ** 31 ? { type: 'exit', code: m.code } : null
    case 'failed':
      return typeof m.error === 'string' ? { type: 'failed', error: m.error.slice(0, MAX_ERROR_CHARS) } : null
    case 'output': {
      if (!Array.isArray(m.chunks) || m.chunks.length > MAX_CHUNKS_PER_MESSAGE) return null
      const chunks: OutputChunk[] = []
      for (const c of m.chunks as unknown[]) {
        if (typeof c !== 'object' || c === null) return null
        const { stream, text } = c as Record<string, unknown>
        if ((stream !== 'stdout' && stream !== 'stderr') || typeof text !== 'string') return null
        chunks.push({ stream, text })
      }
      return { type: 'output', chunks }
    }
    default:
      return null
  }
}

/** `data` as a {@link StartMessage}, or null (the worker checks what it is told, too). */
export function parseStartMessage (data: unknown): StartMessage | null {
  if (typeof data !== 'object' || data === null) return null
  const m = data as Record<string, unknown>
  if (m.type !== 'start' || typeof m.entry !== 'string' || !Array.isArray(m.files)) return null
  if (typeof m.outputLimitBytes !== 'number' || !(m.outputLimitBytes > 0)) return null
  const files: Array<[string, string]> = []
  for (const f of m.files as unknown[]) {
    if (!Array.isArray(f) || typeof f[0] !== 'string' || typeof f[1] !== 'string') return null
    files.push([f[0], f[1]])
  }
  const shared = (v: unknown) => (typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer ? v : null)
  const stdin = shared(m.stdin)
  const output = shared(m.output)
  const pyodideUrl = typeof m.pyodideUrl === 'string' ? m.pyodideUrl : undefined
  return { type: 'start', files, entry: m.entry, stdin, output, outputLimitBytes: m.outputLimitBytes, pyodideUrl }
}
