/**
 * The page's side of a run in this browser (loaded on the first local run, so the page's
 * first load does not carry it): one fresh worker per run, as the server uses one fresh
 * container per run, so nothing of one run leaks into the next. It starts the worker, feeds
 * it typed stdin, passes its output on, and ends the run: at the program's exit, at the
 * time limit, at the output limit, or at Stop, by terminating the worker.
 *
 * The worker runs code anyone in the room may have written: everything it says is parsed
 * (local-protocol.ts) and its output is counted here as well, so a worker that lies about
 * its output still cannot flood the page.
 */
import type { LocalLanguage, LocalLimits, LocalRun, LocalRunEnd, LocalRunIO } from './local.js'
import { OutputMeter } from './local-output.js'
import { parseWorkerMessage, type StartMessage } from './local-protocol.js'
import { createStdinBuffer, StdinFeeder, StdinWriter } from './local-stdin.js'

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
  const stdinBuffer = isolated ? createStdinBuffer() : null
  const stdin = stdinBuffer ? new StdinFeeder(new StdinWriter(stdinBuffer)) : null
  const meter = new OutputMeter(limits.outputBytes)

  let startedAt: number | null = null
  let timer: ReturnType<typeof setTimeout> | null = null
  let settle!: (end: LocalRunEnd) => void
  const done = new Promise<LocalRunEnd>(resolve => { settle = resolve })
  let ended = false

  const end = (how: Omit<LocalRunEnd, 'durationMs'>) => {
    if (ended) return
    ended = true
    if (timer !== null) clearTimeout(timer)
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
        for (const c of m.chunks) {
          const text = meter.take(c.text)
          if (text) io[c.stream](text)
        }
        if (meter.over) end({ code: null, limit: 'output' })
        return
      case 'stdin-read':
        stdin?.pump()
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
    outputLimitBytes: limits.outputBytes,
    pyodideUrl: language === 'python' ? new URL(`/assets/${__MESH_PYODIDE_DIR__}/`, location.href).href : undefined,
  }
  worker.postMessage(start)

  return {
    input: (text, eof = false) => { if (!ended) stdin?.push(text, eof) },
    stop: () => end({ code: null, limit: null }),
    done,
  }
}
