/**
 * The worker a JavaScript program runs in, in this browser. It gives the program what a
 * small Node program uses (`console`, `process.stdout/stderr/stdin/exit/argv`, `require` of
 * the room's other files and of `fs` for stdin and the room's files, `readline`, `util`) and
 * ends like Node: when the program's code, timers and stdin listeners are all done, with
 * exit code 0 (or `process.exitCode`); an uncaught error or unhandled rejection prints its
 * stack to stderr and exits 1. CommonJS only: `import` statements are a syntax error, as in
 * Node for a `.js` file. Data events carry strings, not Buffers (there is no Buffer).
 *
 * The program is evaluated with `eval`: this worker's own Content-Security-Policy (sent by
 * mesh-server with the worker script) allows `'unsafe-eval'` and nothing else, so the
 * program can compute but not load scripts or reach the network; the page's policy stays
 * without it. See local-sandbox.ts for what else is taken away.
 */
import { lockDown, onStart, WorkerIO } from './local-sandbox.js'
import { format, inspect } from './local-format.js'
import { BUILTIN_MODULES, dirOf, normalizePath, resolveRequire, wrapModule } from './local-modules.js'

/** Where the program believes it runs: the work dir of the server's runs. */
const WORK_DIR = '/work'

/** Bytes taken from stdin per read. */
const READ_CHUNK_BYTES = 16 * 1024

/** Thrown by `process.exit` to unwind the program's stack. */
class ExitSignal {
  constructor (readonly code: number) {}
}

type Listener = (...args: unknown[]) => void

/** A minimal event emitter, for `process.stdin` and readline. */
class Emitter {
  private readonly listeners = new Map<string, Listener[]>()

  on (event: string, fn: Listener): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), fn])
    this.added(event)
    return this
  }

  addListener (event: string, fn: Listener): this { return this.on(event, fn) }

  once (event: string, fn: Listener): this {
    const once: Listener = (...args) => { this.off(event, once); fn(...args) }
    return this.on(event, once)
  }

  off (event: string, fn: Listener): this {
    this.listeners.set(event, (this.listeners.get(event) ?? []).filter(f => f !== fn))
    return this
  }

  removeListener (event: string, fn: Listener): this { return this.off(event, fn) }

  protected count (event: string): number { return this.listeners.get(event)?.length ?? 0 }

  protected emit (event: string, ...args: unknown[]): void {
    for (const fn of this.listeners.get(event) ?? []) fn(...args)
  }

  protected added (event: string): void { void event }
}

onStart((start, post) => {
  const io = new WorkerIO(post, start)
  const files = new Map(start.files)
  const entry = normalizePath(start.entry)
  if (entry === null || !files.has(entry)) {
    post({ type: 'failed', error: `${start.entry} is not a file of the room` })
    return
  }

  // --- ending ----------------------------------------------------------------------------
  let idleQueued = false
  const timers = new Set<unknown>()
  const finish = (code: number) => io.exit(code)
  const uncaught = (err: unknown, kind = 'Uncaught') => {
    if (err instanceof ExitSignal) return finish(err.code)
    if (io.done) return
    io.write('stderr', `${kind} ${describe(err)}\n`)
    finish(1)
  }
  const describe = (err: unknown) => {
    if (!(err instanceof Error)) return inspect(err)
    // Frames of this worker's own code are not the program's.
    const ours = `${location.origin}/assets/`
    return (err.stack ?? `${err.name}: ${err.message}`).split('\n').filter(l => !l.includes(ours)).join('\n')
  }
  const realSetTimeout = globalThis.setTimeout.bind(globalThis)
  const realClearTimeout = globalThis.clearTimeout.bind(globalThis)
  const realSetInterval = globalThis.setInterval.bind(globalThis)
  const realClearInterval = globalThis.clearInterval.bind(globalThis)
  /** Ends the run once nothing of the program can run any more: no timer and no stdin
   * listener (checked after a task, when promises have settled what they could). */
  const idle = () => {
    if (idleQueued || io.done) return
    idleQueued = true
    realSetTimeout(() => {
      idleQueued = false
      if (!io.done && timers.size === 0 && !stdin.active) finish(proc.exitCode ?? 0)
    }, 0)
  }
  const guarded = (fn: unknown, args: unknown[]) => {
    try {
      if (typeof fn === 'function') (fn as Listener)(...args)
    } catch (e) {
      uncaught(e)
    }
  }

  // --- stdin -----------------------------------------------------------------------------
  const readAll = (): string => {
    const decoder = new TextDecoder()
    const buf = new Uint8Array(READ_CHUNK_BYTES)
    let text = ''
    for (let n = io.readSync(buf); n > 0; n = io.readSync(buf)) text += decoder.decode(buf.subarray(0, n), { stream: true })
    return text + decoder.decode()
  }

  /** `process.stdin`: while someone listens for data, text typed goes to them as it comes. */
  class Stdin extends Emitter {
    readonly fd = 0
    readonly isTTY = false
    private flowing = false
    private ended = false
    private generation = 0
    private wake: (() => void) | null = null
    private readonly decoder = new TextDecoder()

    get active (): boolean { return this.flowing && !this.ended }

    setEncoding (): this { return this }

    resume (): this {
      if (this.flowing || this.ended) return this
      this.flowing = true
      void this.pump(++this.generation)
      return this
    }

    pause (): this {
      this.flowing = false
      this.wake?.()
      idle()
      return this
    }

    protected override added (event: string): void {
      if (event === 'data' || event === 'end') this.resume()
    }

    private async pump (generation: number): Promise<void> {
      const buf = new Uint8Array(READ_CHUNK_BYTES)
      while (this.flowing && generation === this.generation && !io.done) {
        const got = io.tryRead(buf)
        if (got === 'eof') {
          this.ended = true
          const rest = this.decoder.decode()
          if (rest) guarded(() => this.emit('data', rest), [])
          guarded(() => this.emit('end'), [])
          break
        }
        if (got === 'empty') {
          await Promise.race([io.changed(), new Promise<void>(resolve => { this.wake = resolve })])
          this.wake = null
          continue
        }
        const text = this.decoder.decode(buf.subarray(0, got), { stream: true })
        if (text) guarded(() => this.emit('data', text), [])
      }
      idle()
    }
  }
  const stdin = new Stdin()

  /** `readline.createInterface({ input: process.stdin })`: lines, `question`, async
   * iteration; `question` without a callback returns a promise, as `readline/promises`. */
  class Interface extends Emitter {
    private partial = ''
    private closed = false
    private readonly queued: string[] = []
    private readonly waiting: Array<(r: IteratorResult<string>) => void> = []
    private answer: ((line: string) => void) | null = null
    private promptText = '> '

    constructor () {
      super()
      stdin.on('data', (chunk) => this.feed(String(chunk)))
      stdin.on('end', () => {
        if (this.partial) this.line(this.partial)
        this.partial = ''
        this.close()
      })
    }

    private feed (chunk: string): void {
      const parts = (this.partial + chunk).split(/\r?\n/)
      this.partial = parts.pop() ?? ''
      for (const l of parts) this.line(l)
    }

    private line (l: string): void {
      if (this.answer) {
        const a = this.answer
        this.answer = null
        a(l)
      } else if (this.waiting.length) this.waiting.shift()!({ value: l, done: false })
      else if (this.count('line') > 0) this.emit('line', l)
      else this.queued.push(l)
    }

    protected override added (event: string): void {
      if (event === 'line') while (this.queued.length && this.count('line') > 0) this.emit('line', this.queued.shift())
    }

    question (query: string, cb?: (answer: string) => void): Promise<string> | undefined {
      io.write('stdout', String(query))
      if (cb) { this.answer = cb; return undefined }
      return new Promise(resolve => { this.answer = resolve })
    }

    setPrompt (p: string): void { this.promptText = String(p) }
    prompt (): void { io.write('stdout', this.promptText) }

    close (): void {
      if (this.closed) return
      this.closed = true
      for (const w of this.waiting.splice(0)) w({ value: undefined, done: true })
      stdin.pause()
      this.emit('close')
    }

    [Symbol.asyncIterator] (): AsyncIterator<string> {
      return {
        next: () => {
          if (this.queued.length) return Promise.resolve({ value: this.queued.shift()!, done: false })
          if (this.closed) return Promise.resolve({ value: undefined, done: true })
          return new Promise(resolve => this.waiting.push(resolve))
        },
        return: () => { this.close(); return Promise.resolve({ value: undefined, done: true }) },
      }
    }
  }

  // --- process, console, fs --------------------------------------------------------------
  const cwd = `${WORK_DIR}/${dirOf(entry)}`.replace(/\/$/, '')
  const roomPath = (file: unknown): string | null => {
    const p = String(file)
    if (p.startsWith(`${WORK_DIR}/`)) return normalizePath(p.slice(WORK_DIR.length))
    return p.startsWith('/') ? null : normalizePath(`${dirOf(entry)}/${p}`)
  }
  const noFile = (file: unknown) => Object.assign(new Error(`ENOENT: no such file or directory, open '${String(file)}' (a program running in the browser sees the room's files only)`), { code: 'ENOENT' })
  const proc = {
    argv: ['node', `${WORK_DIR}/${entry}`],
    env: {} as Record<string, string>,
    platform: 'browser',
    exitCode: undefined as number | undefined,
    stdin,
    stdout: { write: (s: unknown) => { io.write('stdout', String(s)); return true }, isTTY: false },
    stderr: { write: (s: unknown) => { io.write('stderr', String(s)); return true }, isTTY: false },
    exit: (code?: number): never => { throw new ExitSignal(Number(code ?? proc.exitCode ?? 0) | 0) },
    cwd: () => cwd,
    nextTick: (fn: Listener, ...args: unknown[]) => queueMicrotask(() => guarded(fn, args)),
    hrtime: Object.assign((prev?: [number, number]) => {
      const ns = BigInt(Math.round(performance.now() * 1e6))
      const t: [number, number] = [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)]
      return prev ? [t[0] - prev[0], t[1] - prev[1]] : t
    }, { bigint: () => BigInt(Math.round(performance.now() * 1e6)) }),
    uptime: () => performance.now() / 1000,
    on: () => proc,
    once: () => proc,
  }
  const fs = {
    readFileSync: (file: unknown) => {
      if (file === 0 || file === '/dev/stdin') return readAll()
      const p = roomPath(file)
      if (p === null || !files.has(p)) throw noFile(file)
      return files.get(p)!
    },
    existsSync: (file: unknown) => { const p = roomPath(file); return p !== null && files.has(p) },
    writeFileSync: (file: unknown, data: unknown) => {
      if (file === 1 || file === '/dev/stdout') return proc.stdout.write(data)
      if (file === 2 || file === '/dev/stderr') return proc.stderr.write(data)
      const p = roomPath(file)
      if (p === null) throw noFile(file)
      files.set(p, String(data))
    },
  }
  const readline = { createInterface: () => new Interface() }
  const builtins: Record<(typeof BUILTIN_MODULES)[number], unknown> = {
    fs, readline, process: proc, util: { format: (...a: unknown[]) => format(a), inspect: (v: unknown) => inspect(v) },
  }
  const cache = new Map<string, { exports: unknown }>()
  const makeRequire = (from: string) => {
    const require = (spec: unknown): unknown => {
      const name = String(spec).replace(/^node:/, '')
      if (name === 'readline/promises') return readline
      if ((BUILTIN_MODULES as readonly string[]).includes(name)) return builtins[name as (typeof BUILTIN_MODULES)[number]]
      const path = resolveRequire(String(spec), from, p => files.has(p))
      if (path === null) {
        throw Object.assign(new Error(`Cannot find module '${String(spec)}': a program running in the browser can require the room's own files ('./name') and ${BUILTIN_MODULES.join(', ')}; run it on the server for other modules.`), { code: 'MODULE_NOT_FOUND' })
      }
      const cached = cache.get(path)
      if (cached) return cached.exports
      const text = files.get(path)!
      if (path.endsWith('.json')) {
        const m = { exports: JSON.parse(text) as unknown }
        cache.set(path, m)
        return m.exports
      }
      const module = { exports: {} as unknown, id: path, filename: `${WORK_DIR}/${path}`, loaded: false }
      cache.set(path, module)
      const fn = (0, eval)(wrapModule(path, text)) as (...a: unknown[]) => void
      fn.call(module.exports, module.exports, makeRequire(path), module, module.filename, `${WORK_DIR}/${dirOf(path)}`.replace(/\/$/, ''))
      module.loaded = true
      return module.exports
    }
    return require
  }

  const out = (...args: unknown[]) => io.write('stdout', `${format(args)}\n`)
  const err = (...args: unknown[]) => io.write('stderr', `${format(args)}\n`)
  const console = { log: out, info: out, debug: out, error: err, warn: err, trace: err, dir: (v: unknown) => out(inspect(v)) }

  // --- the program's world ---------------------------------------------------------------
  const scope = globalThis as unknown as Record<string, unknown>
  scope.console = console
  scope.process = proc
  scope.setTimeout = (fn: unknown, ms?: number, ...args: unknown[]) => {
    const id: unknown = realSetTimeout(() => { timers.delete(id); guarded(fn, args); idle() }, ms)
    timers.add(id)
    return id
  }
  scope.setImmediate = (fn: unknown, ...args: unknown[]) => (scope.setTimeout as (...a: unknown[]) => unknown)(fn, 0, ...args)
  scope.setInterval = (fn: unknown, ms?: number, ...args: unknown[]) => {
    const id: unknown = realSetInterval(() => { guarded(fn, args); idle() }, ms)
    timers.add(id)
    return id
  }
  scope.clearTimeout = scope.clearImmediate = (id: unknown) => { timers.delete(id); realClearTimeout(id as number); idle() }
  scope.clearInterval = (id: unknown) => { timers.delete(id); realClearInterval(id as number); idle() }
  addEventListener('error', (e: ErrorEvent) => { e.preventDefault(); uncaught(e.error ?? e.message) })
  addEventListener('unhandledrejection', (e: PromiseRejectionEvent) => { e.preventDefault(); uncaught(e.reason, 'Uncaught (in promise)') })

  lockDown()
  post({ type: 'started' })
  try {
    makeRequire(entry)(`/${entry}`)
  } catch (e) {
    uncaught(e)
  }
  idle()
})
