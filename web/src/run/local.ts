/**
 * Runs in this browser, without the server's sandboxes: JavaScript in a sandboxed worker,
 * Python in Pyodide served by mesh-server. Used when the server has no run service, or when
 * the user picks "this browser". The output goes to the same run panel.
 *
 * This module is what the page loads with the run panel: the interface and a few lines. The
 * rest (local-runner.ts, the workers, Pyodide) is fetched on the first local run, so a page
 * that never runs in the browser never downloads it. How it is sandboxed: local-sandbox.ts;
 * why: docs/decisions/009-browser-client.md (its addendum on in-browser execution).
 */

/** The languages that can run in the browser. */
export type LocalLanguage = 'javascript' | 'python'

/** Whether `language` (a registry id) can run in the browser. */
export function canRunLocally (language: string): language is LocalLanguage {
  return language === 'javascript' || language === 'python'
}

/** Where a local run's output goes, as it is produced. */
export interface LocalRunIO {
  stdout: (text: string) => void
  stderr: (text: string) => void
}

/** How a local run ended. `limit` names the limit that ended it, as the server's runs do. */
export interface LocalRunEnd {
  code: number | null
  durationMs: number
  limit: 'time' | 'output' | 'memory' | null
  /** Set when the runtime itself failed (could not load), not the program; `'stopped'` after
   * {@link LocalRun.stop}, as the server reports a stopped run. */
  error?: string
}

/** A run going on in this browser. */
export interface LocalRun {
  /** Text for the program's stdin; `eof` closes it. */
  input: (text: string, eof?: boolean) => void
  /** Ends the run now. */
  stop: () => void
  /** Settles once the run has ended, however it ended. */
  readonly done: Promise<LocalRunEnd>
}

/** The limits of a run in the browser: the same idea, and by default the same values, as
 * the server's runs (`images/languages.toml`'s `[defaults.limits]`). */
export interface LocalLimits {
  /** Wall-clock time of the program, from its start (not counting loading the runtime). */
  timeMs: number
  /** stdout and stderr together, in UTF-8 bytes. */
  outputBytes: number
}

/** The server's default run time (`wall_seconds = 10`): a program that has not ended by
 * then is stopped, and an endless loop does not hold the user's browser. */
export const LOCAL_TIME_LIMIT_MS = 10_000

/** The server's default output cap (`output_bytes = 1048576`): enough for any program
 * meant to be read, and a print loop does not fill the page's memory. */
export const LOCAL_OUTPUT_LIMIT_BYTES = 1024 * 1024

/** The limits a run in the browser gets unless told otherwise. */
export const LOCAL_LIMITS: Readonly<LocalLimits> = { timeMs: LOCAL_TIME_LIMIT_MS, outputBytes: LOCAL_OUTPUT_LIMIT_BYTES }

/** Runs `entry` of `files` (room path → text) in this browser. `limits` defaults to
 * {@link LOCAL_LIMITS}. */
export function runLocally (language: LocalLanguage, files: ReadonlyMap<string, string>, entry: string, io: LocalRunIO, limits: Partial<LocalLimits> = {}): LocalRun {
  const loadStarted = performance.now()
  let run: LocalRun | null = null
  let stopped = false
  const early: Array<[string, boolean]> = []
  const done = import('./local-runner.js')
    .then(({ startLocalRun }) => {
      if (stopped) return { code: null, durationMs: 0, limit: null, error: 'stopped' }
      run = startLocalRun(language, files, entry, io, { ...LOCAL_LIMITS, ...limits })
      for (const [text, eof] of early.splice(0)) run.input(text, eof)
      return run.done
    })
    .catch((e: unknown): LocalRunEnd => ({
      code: null,
      durationMs: performance.now() - loadStarted,
      limit: null,
      error: `this page could not load its in-browser runner (${e instanceof Error ? e.message : String(e)}); reload the page`,
    }))
  return {
    input: (text, eof = false) => { if (run) run.input(text, eof); else early.push([text, eof]) },
    stop: () => { if (run) run.stop(); else stopped = true },
    done,
  }
}
