/**
 * Runs in this browser, without the server's sandboxes: JavaScript in a sandboxed worker,
 * Python in Pyodide served by mesh-server. Used when the server has no run service, or when
 * the user picks "this browser". The output goes to the same run panel.
 *
 * (The interface is fixed; the implementation lands with the in-browser execution slice.)
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
  /** Set when the runtime itself failed (could not load), not the program. */
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

/** Runs `entry` of `files` (room path → text) in this browser. */
export function runLocally (language: LocalLanguage, files: ReadonlyMap<string, string>, entry: string, io: LocalRunIO): LocalRun {
  void language; void files; void entry; void io
  const started = performance.now()
  return {
    input: () => {},
    stop: () => {},
    done: Promise.resolve({ code: null, durationMs: performance.now() - started, limit: null, error: 'running in the browser is not built into this page yet' }),
  }
}
