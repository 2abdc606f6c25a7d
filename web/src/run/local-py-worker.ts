/**
 * The worker a Python program runs in, in this browser: CPython compiled to WebAssembly
 * (Pyodide), loaded from mesh-server (the npm package's files, copied into the build under
 * `assets/pyodide-VERSION/` by vite.config.ts; no CDN) only when a Python run in the browser
 * is asked for, and cached by the browser after the first time.
 *
 * The room's files are written under `/work` (the server's work dir) with the entry's folder
 * first on `sys.path`, so `import util` finds `util.py`. stdout and stderr are unbuffered
 * (as the server's `python3 -u`) and batched on their way to the page; `input()` reads what
 * is typed while the program runs through the shared stdin ring (local-stdin.ts), blocking
 * this worker, and gets EOF once stdin is closed. The time limit and Stop terminate the
 * worker from the page, which a Python program cannot catch, unlike a KeyboardInterrupt from
 * Pyodide's interrupt buffer.
 */
import { lockDown, onStart, WorkerIO } from './local-sandbox.js'
import { dirOf, normalizePath } from './local-modules.js'

/** Where the room's files are written, as on the server. */
const WORK_DIR = '/work'

/** The part of Pyodide's API used here (the package's own types pull in Node's). */
interface Pyodide {
  FS: { mkdirTree: (path: string) => void; writeFile: (path: string, data: string) => void }
  setStdout: (o: { write: (b: Uint8Array) => number; isatty: boolean }) => void
  setStderr: (o: { write: (b: Uint8Array) => number; isatty: boolean }) => void
  setStdin: (o: { read: (b: Uint8Array) => number; isatty: boolean }) => void
  runPython: (code: string) => unknown
}
type LoadPyodide = (o: { indexURL: string; env?: Record<string, string>; checkAPIVersion?: boolean }) => Promise<Pyodide>

/** Runs the entry as `__main__` as `python3 -u main.py` would, and returns its exit code:
 * 0, `sys.exit`'s code, or 1 after printing an uncaught exception's traceback (without this
 * runner's own frame). */
const RUNNER = `
import io, os, sys, traceback, types

def _mesh_run(path):
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True)
    folder = os.path.dirname(path)
    os.chdir(folder)
    sys.path.insert(0, folder)
    sys.argv = [path]
    main = types.ModuleType("__main__")
    main.__file__ = path
    sys.modules["__main__"] = main
    try:
        with open(path, encoding="utf-8") as f:
            code = compile(f.read(), path, "exec")
        exec(code, main.__dict__)
        return 0
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    except BaseException as e:
        tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
        traceback.print_exception(type(e), e, tb)
        return 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass

_mesh_run
`

onStart(async (start, post) => {
  const io = new WorkerIO(post, start)
  const entry = normalizePath(start.entry)
  if (!start.pyodideUrl || entry === null) {
    post({ type: 'failed', error: 'the Python run was started without Pyodide\'s address or with a bad entry path' })
    return
  }
  const { loadPyodide } = await import(/* @vite-ignore */ `${start.pyodideUrl}pyodide.mjs`) as { loadPyodide: LoadPyodide }
  const pyodide = await loadPyodide({ indexURL: start.pyodideUrl, env: { HOME: WORK_DIR }, checkAPIVersion: true })

  for (const [raw, text] of start.files) {
    const path = normalizePath(raw)
    if (path === null || path === '') continue
    pyodide.FS.mkdirTree(`${WORK_DIR}/${dirOf(path)}`)
    pyodide.FS.writeFile(`${WORK_DIR}/${path}`, text)
  }
  const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() }
  const writer = (stream: 'stdout' | 'stderr') => ({
    write: (bytes: Uint8Array) => {
      io.write(stream, decoders[stream].decode(bytes, { stream: true }))
      return bytes.length
    },
    isatty: false,
  })
  pyodide.setStdout(writer('stdout'))
  pyodide.setStderr(writer('stderr'))
  pyodide.setStdin({ read: (into) => io.readSync(into), isatty: false })
  const run = pyodide.runPython(RUNNER) as (path: string) => number

  lockDown()
  post({ type: 'started' })
  const code = run(`${WORK_DIR}/${entry}`)
  io.exit(typeof code === 'number' ? code : 1)
})
