/**
 * The page's side of a run in this browser (loaded on the first local run, so the page's
 * first load does not carry it): one fresh worker per run, as the server uses one fresh
 * container per run, so nothing of one run leaks into the next. It starts the worker, feeds
 * it typed stdin, takes its output every 25 ms, and ends the run: at the program's exit, at the
 * time limit, at the output limit, or at Stop, by terminating the worker.
 *
 * The worker runs code anyone in the room may have written: everything it says is parsed
 * (local-protocol.ts) and its output is counted here as well, so a worker that lies about
 * its output still cannot flood the page.
 */
import type { LocalLanguage, LocalLimits, LocalRun, LocalRunEnd, LocalRunIO } from './local.js'
import { FLUSH_MS, OutputMeter, RecordDecoder, type OutputChunk } from './local-output.js'
import { parseWorkerMessage, type StartMessage } from './local-protocol.js'
import { createRing, OUTPUT_BUFFER_BYTES, RingReader, RingWriter, StdinFeeder, STDIN_BUFFER_BYTES } from './local-ring.js'

/** The folder of Pyodide's files in the build (vite.config.ts puts its version in it). */
declare const __MESH_PYODIDE_DIR__: string

/** How long a runtime may take to load before the run gives up: Pyodide is about 6 MB on
 * the first run (cached afterwards) and its start takes a few seconds on a slow machine. */
export const LOAD_TIMEOUT_MS = 120_000

/** Starts `entry` of `files` in a new worker. */
export function startLocalRun (language: LocalLanguage, files: ReadonlyMap<string, string>, entry: string, io: LocalRunIO, limits: LocalLimits): LocalRun {
  const worker = language === 'python'
    ? new Worker(new URL('./local-py-worker.ts', import.meta.url), { type: 'module', name: 'mesh-run-python' })
    : new Worker(new URL('./local-js-worker.ts', import.meta.url), { type: 'module', name: 'mesh-run-javascript' })
  const isolated = globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function'
  const stdinBuffer = isolated ? createRing(STDIN_BUFFER_BYTES) : null
  const outputBuffer = isolated ? createRing(OUTPUT_BUFFER_BYTES) : null
  const stdin = stdinBuffer ? new StdinFeeder(new RingWriter(stdinBuffer)) : null
  const output = outputBuffer ? new RingReader(outputBuffer) : null
  const records = new RecordDecoder()
  const readBuf = new Uint8Array(OUTPUT_BUFFER_BYTES)
  const meter = new OutputMeter(limits.outputBytes)

  let startedAt: number | null = null
  let timer: ReturnType<typeof setTimeout> | null = null
  let settle!: (end: LocalRunEnd) => void
  const done = new Promise<LocalRunEnd>(resolve => { settle = resolve })
  let ended = false

  /** Passes output on, counted here too; past the limit the run ends. */
  const deliver = (chunks: OutputChunk[]) => {
    for (const c of chunks) {
      const text = meter.take(c.text)
      if (text) io[c.stream](text)
    }
  }
  /** Takes what the program printed out of the ring (a garbled record throws). */
  const drain = () => {
    for (let n = output?.tryRead(readBuf); typeof n === 'number'; n = output?.tryRead(readBuf)) deliver(records.push(readBuf.subarray(0, n)))
  }
  /** Takes what the program printed out of the ring and typed text into it. */
  const exchange = () => {
    try {
      drain()
    } catch (e) {
      end({ code: null, limit: null, error: e instanceof Error ? e.message : String(e) })
      return
    }
    stdin?.pump()
    if (meter.over) end({ code: null, limit: 'output' })
  }
  const ticker = output ? setInterval(exchange, FLUSH_MS) : null

  const end = (how: Omit<LocalRunEnd, 'durationMs'>) => {
    if (ended) return
    // What the program printed before it ended (or was ended) is shown, then it goes.
    ended = true
    try { drain() } catch { /* garbled at the very end: the run is over anyway */ }
    if (timer !== null) clearTimeout(timer)
    if (ticker !== null) clearInterval(ticker)
    worker.terminate()
    const durationMs = startedAt === null ? 0 : performance.now() - startedAt
    settle({ ...how, durationMs })
  }

  worker.addEventListener('message', (e: MessageEvent) => {
    if (ended) return
    const m = parseWorkerMessage(e.data)
    if (!m) return
    switch (m.type) {
      case 'started':
        if (startedAt !== null) return
        startedAt = performance.now()
        if (timer !== null) clearTimeout(timer)
        timer = setTimeout(() => end({ code: null, limit: 'time' }), limits.timeMs)
        return
      case 'output':
        if (output) return // a worker with a ring has no business sending these
        deliver(m.chunks)
        if (meter.over) end({ code: null, limit: 'output' })
        return
      case 'output-limit':
        end({ code: null, limit: 'output' })
        return
      case 'exit':
        end({ code: m.code, limit: null })
        return
      case 'failed':
        end({ code: null, limit: null, error: m.error })
    }
  })
  worker.addEventListener('error', (e: ErrorEvent) => {
    e.preventDefault()
    end({ code: null, limit: null, error: `the ${language} runtime failed in this browser: ${e.message || 'its script did not load'}` })
  })
  timer = setTimeout(() => end({ code: null, limit: null, error: `the ${language} runtime did not load within ${LOAD_TIMEOUT_MS / 1000} s; try again, or run on the server` }), LOAD_TIMEOUT_MS)

  const start: StartMessage = {
    type: 'start',
    files: [...files],
    entry,
    stdin: stdinBuffer,
    output: outputBuffer,
    outputLimitBytes: limits.outputBytes,
    pyodideUrl: language === 'python' ? new URL(`/assets/${__MESH_PYODIDE_DIR__}/`, location.href).href : undefined,
  }
  worker.postMessage(start)

  return {
    input: (text, eof = false) => { if (!ended) stdin?.push(text, eof) },
    stop: () => end({ code: null, limit: null, error: 'stopped' }),
    done,
  }
}
