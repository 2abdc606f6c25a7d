// The browser client's benchmark: what a person opening a join link waits for and what the
// page costs, measured in real Chromium against a real mesh-server, with the room's files
// shared from a folder by a real `mesh-proxy share` (as a user would put a 1 MB file in).
//
//   scripts/bench-web [--runs N] [--keys N] [--markdown] [--keys-only]
//
// Prints one table: page load to an editable 1 MB file (cold: a browser that never saw the
// room; warm: the same browser opening the link again, with the room kept in IndexedDB),
// keystroke latency from one page to another (p50/p99/max over --keys keys typed at a
// person's pace: in lines of about 45 characters, and again in one long line that scrolls
// the editor sideways at every key), the JavaScript shipped on page load (bytes on the wire, gzip), and the
// page's memory with 10 open files. Targets from the browser client's issue beside each.
// `--keys-only` measures the keystrokes only and splits their latency into the sending page
// (keydown to its socket sending the update), the server with the network (A's socket to
// B's socket, B's wait for its main thread included) and the receiving page (B's socket to
// its editor's DOM).
//
// `--profile DIR` (with `--keys-only`) also records both pages' CPU while they type and
// watch: Chromium's per-category time per key (script, layout, style) and a V8 CPU profile
// of each page in DIR (`typist.cpuprofile`, `watcher.cpuprofile`, for DevTools), with the
// functions that took the most time printed.
//
// MESH_SERVER_BIN / MESH_PROXY_BIN name the binaries (default: target/release/ of the repo,
// or of CARGO_TARGET_DIR); CHROMIUM the browser (default /usr/bin/chromium).

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, cpus } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target')
const SERVER_BIN = process.env.MESH_SERVER_BIN ?? join(TARGET, 'release', 'mesh-server')
const PROXY_BIN = process.env.MESH_PROXY_BIN ?? join(TARGET, 'release', 'mesh-proxy')
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    keys: { type: 'string', default: '300' },
    markdown: { type: 'boolean', default: false },
    'keys-only': { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
})
const RUNS = Number(opts.runs)
const KEYS = Number(opts.keys)

/** The big file: 1 MB of Python-looking lines (what the target is about). */
const BIG_BYTES = 1024 * 1024
/** The other nine files of the memory figure. */
const SMALL_BYTES = 100 * 1024
/** How many files are open for the memory figure. */
const OPEN_FILES = 10
/**
 * What the typist types: `n` keys of words and newlines, lines of about 45 characters as
 * people write code and prose. Nothing that an editor completes by itself (no brackets, no
 * quotes, no indentation), so each key is exactly one character in the watcher's text.
 */
function proseLines (n) {
  const line = 'let the sum of every value seen so far be total\n'
  return line.repeat(Math.ceil(n / line.length)).slice(0, n)
}

/** The pause between keys, as a quick typist: 60 ms is 200 keys a minute... a brisk 100 wpm. */
const KEY_DELAY_MS = 60
/** How long any one wait may take before the benchmark gives up. */
const WAIT_MS = 60_000

const tmp = mkdtempSync(join(tmpdir(), 'mesh-web-bench-'))
const cleanups = []
const log = (...a) => console.error('[bench]', ...a)

function lines (bytes, tag) {
  const out = []
  let n = 0
  let size = 0
  while (size < bytes) {
    const line = `def ${tag}_${n}(x):  # ünïcode ✓ line ${n}\n    return x * ${n} + len("${'abcdefghij'.repeat(2)}")\n`
    out.push(line)
    size += Buffer.byteLength(line)
    n++
  }
  return out.join('')
}

async function stop (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await once(child, 'exit')
  clearTimeout(t)
}

async function startServer () {
  const child = spawn(SERVER_BIN, ['--listen', '127.0.0.1:0', '--data-dir', join(tmp, 'data')], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, MESH_LOG: 'warn' },
  })
  cleanups.push(() => stop(child))
  const rl = createInterface({ input: child.stdout })
  const [first] = await once(rl, 'line')
  const m = /listening on (http:\/\/[\d.:]+)/.exec(first)
  if (!m) throw new Error(`mesh-server said: ${first}`)
  rl.on('line', () => {})
  return m[1]
}

/** Shares `dir` with `mesh-proxy share`; returns the writer link. */
async function share (server, dir) {
  const child = spawn(PROXY_BIN, ['share', dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, MESH_SERVER: server, MESH_NAME: 'Sharer', XDG_STATE_HOME: join(tmp, 'state'), XDG_CONFIG_HOME: join(tmp, 'state'), MESH_LOG: 'warn' },
  })
  cleanups.push(() => stop(child))
  for await (const line of createInterface({ input: child.stdout })) {
    const m = /^Join link \(writer\): (\S+)/.exec(line)
    if (m) return m[1]
  }
  throw new Error('mesh-proxy share ended before printing its link')
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]
}

/**
 * Installed in the keystroke pages before their scripts run: records when the page's room
 * socket sends a document update (y-protocols sync `Update`: bytes 0, 2) and when one arrives
 * (before the page's own handler runs), so the latency splits into the sending page, the
 * server with the network, and the receiving page.
 */
function tapRoomSocket () {
  const now = () => performance.timeOrigin + performance.now()
  const isUpdate = (data) => {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null
    return bytes !== null && bytes.length > 2 && bytes[0] === 0 && bytes[1] === 2
  }
  const tap = { sent: [], received: [] }
  window.__socket = tap
  const Native = window.WebSocket
  const send = Native.prototype.send
  Native.prototype.send = function (data) {
    if (isUpdate(data)) tap.sent.push(now())
    return send.call(this, data)
  }
  window.WebSocket = class extends Native {
    constructor (...args) {
      super(...args)
      // Registered before the page sets `onmessage`, so it runs first.
      this.addEventListener('message', (e) => { if (isUpdate(e.data)) tap.received.push(now()) })
    }
  }
}

/** Chromium's metrics that say where a page's main thread spent its time, in seconds. */
const CPU_METRICS = ['TaskDuration', 'ScriptDuration', 'LayoutDuration', 'RecalcStyleDuration', 'TaskOtherDuration']

/**
 * Starts recording `page`'s CPU (V8 sampling profile and Chromium's duration metrics); the
 * returned `stop(dir)` writes `<name>.cpuprofile` in dir and prints ms per key by category
 * and the functions with the most self time.
 */
async function startProfile (ctx, page, name) {
  const cdp = await ctx.newCDPSession(page)
  await cdp.send('Performance.enable', { timeDomain: 'threadTicks' })
  await cdp.send('Profiler.enable')
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 })
  const metrics = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics')
    return Object.fromEntries(CPU_METRICS.map(n => [n, metrics.find(x => x.name === n)?.value ?? NaN]))
  }
  const before = await metrics()
  await cdp.send('Profiler.start')
  return {
    async stop (dir) {
      const { profile } = await cdp.send('Profiler.stop')
      const after = await metrics()
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile))
      const perKey = CPU_METRICS.map(n => `${n.replace('Duration', '')} ${((after[n] - before[n]) * 1000 / KEYS).toFixed(2)}`)
      console.log(`${name}: main thread ms per key: ${perKey.join(', ')}`)
      // Self time per function: samples × their intervals, attributed to the sampled node.
      const byId = new Map(profile.nodes.map(n => [n.id, n]))
      const self = new Map()
      for (let i = 0; i < profile.samples.length; i++) {
        const f = byId.get(profile.samples[i]).callFrame
        const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`
        self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000)
      }
      const top = [...self].filter(([k]) => !k.startsWith('(idle)')).sort((x, y) => y[1] - x[1]).slice(0, 20)
      for (const [k, ms] of top) console.log(`  ${(ms / KEYS).toFixed(3).padStart(7)} ms/key  ${k}`)
      await cdp.detach()
    },
  }
}

/** What Chromium's trace records for `--profile`: the main threads' tasks by kind. */
const TRACE_CATEGORIES = ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'blink', 'cc', 'gpu', 'viz', 'toplevel']

/**
 * Prints, for each process's busiest threads, where their time went by trace event (self
 * time: an event's duration less that of the events nested in it), per key; writes the
 * trace to DIR/trace.json (for chrome://tracing or Perfetto).
 */
function summariseTrace (trace, dir) {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'trace.json'), JSON.stringify(trace))
  const events = trace.traceEvents ?? trace
  const names = new Map()
  for (const e of events) {
    if (e.ph === 'M' && e.name === 'thread_name') names.set(`${e.pid}:${e.tid}`, e.args.name)
    if (e.ph === 'M' && e.name === 'process_name') names.set(`${e.pid}`, e.args.name)
  }
  const threads = new Map()
  for (const e of events) {
    if (e.ph !== 'X' || typeof e.dur !== 'number') continue
    const k = `${e.pid}:${e.tid}`
    if (!threads.has(k)) threads.set(k, [])
    threads.get(k).push(e)
  }
  const rows = []
  for (const [k, list] of threads) {
    list.sort((x, y) => x.ts - y.ts || y.dur - x.dur)
    const self = new Map()
    const stack = []
    let total = 0
    for (const e of list) {
      while (stack.length && stack[stack.length - 1].end <= e.ts) stack.pop()
      const parent = stack[stack.length - 1]
      if (parent) parent.self.set(parent.name, (parent.self.get(parent.name) ?? 0) - e.dur)
      else total += e.dur
      self.set(e.name, (self.get(e.name) ?? 0) + e.dur)
      stack.push({ end: e.ts + e.dur, name: e.name, self })
    }
    rows.push({ k, total, self })
  }
  rows.sort((x, y) => y.total - x.total)
  for (const { k, total, self } of rows.slice(0, 8)) {
    const pid = k.split(':')[0]
    console.log(`${names.get(pid) ?? pid} ${pid} / ${names.get(k) ?? k}: ${(total / 1000 / KEYS).toFixed(2)} ms per key in top-level events`)
    for (const [n, us] of [...self].sort((x, y) => y[1] - x[1]).slice(0, 10)) console.log(`  ${(us / 1000 / KEYS).toFixed(3).padStart(7)} ms/key  ${n}`)
  }
}

async function main () {
  const folder = join(tmp, 'folder')
  mkdirSync(folder, { recursive: true })
  const big = lines(BIG_BYTES, 'big')
  writeFileSync(join(folder, 'a_big.py'), big)
  for (let i = 1; i < OPEN_FILES; i++) writeFileSync(join(folder, `f${i}.py`), lines(SMALL_BYTES, `f${i}`))
  writeFileSync(join(folder, 'latency.txt'), 'type here:\n')
  const bigLength = big.length // UTF-16 units, as the editor counts

  const server = await startServer()
  const link = await share(server, folder)
  log(`server ${server}; room shared`)

  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--enable-precise-memory-info'],
  })
  cleanups.unshift(() => browser.close())
  const newContext = async (name) => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    await ctx.addInitScript((n) => { if (!localStorage.getItem('mesh.name')) localStorage.setItem('mesh.name', n) }, name)
    return ctx
  }
  /** Opens the link; ms from navigation start until the big file is in an editable editor. */
  const loadBig = async (page) => {
    await page.goto(link, { waitUntil: 'commit' })
    return page.waitForFunction(([n]) => {
      const ed = document.querySelector('.cm-editor[data-path="a_big.py"]')?.meshEditor
      return ed && !ed.readOnly() && ed.text().length === n ? performance.now() : false
    }, [bigLength], { timeout: WAIT_MS, polling: 'raf' }).then(h => h.jsonValue())
  }

  // --- page load, cold and warm; the JavaScript of a cold load -------------------------
  const cold = []
  const warm = []
  let jsWire = 0
  let jsDecoded = 0
  for (let i = 0; i < (opts['keys-only'] ? 0 : RUNS); i++) {
    const ctx = await newContext(`Load ${i}`)
    const page = await ctx.newPage()
    const scripts = []
    page.on('requestfinished', (r) => { if (r.resourceType() === 'script') scripts.push(r) })
    cold.push(await loadBig(page))
    if (i === 0) {
      for (const r of scripts) {
        const s = await r.sizes()
        jsWire += s.responseBodySize
        jsDecoded += (await (await r.response()).body()).length
      }
    }
    await page.close()
    const again = await ctx.newPage()
    warm.push(await loadBig(again))
    await ctx.close()
  }

  // --- keystrokes from one page to another ---------------------------------------------
  const [ca, cb] = [await newContext('Typist'), await newContext('Watcher')]
  for (const c of [ca, cb]) await c.addInitScript(tapRoomSocket)
  const [a, b] = [await ca.newPage(), await cb.newPage()]
  for (const p of [a, b]) {
    await p.goto(link)
    await p.click('[data-testid=file-tree] li[data-path="latency.txt"] button.file', { timeout: WAIT_MS })
    await p.waitForFunction(() => document.querySelector('.cm-editor[data-path="latency.txt"]')?.meshEditor?.readOnly() === false, null, { timeout: WAIT_MS })
  }
  await b.evaluate(() => {
    const ed = document.querySelector('.cm-editor[data-path="latency.txt"]')
    window.__arrivals = []
    new MutationObserver(() => {
      window.__arrivals.push([performance.timeOrigin + performance.now(), ed.meshEditor.text().length])
    }).observe(ed.querySelector('.cm-content'), { subtree: true, childList: true, characterData: true })
  })
  await a.evaluate(() => {
    window.__sent = []
    window.addEventListener('keydown', () => window.__sent.push(performance.timeOrigin + performance.now()), { capture: true })
  })
  await a.click('.cm-editor[data-path="latency.txt"] .cm-content')

  /**
   * Types `text` in page A at a person's pace (at the end of the file) and returns each key's
   * latency to B's editor DOM, split at the pages' sockets when every key made one update.
   */
  const typeAndWatch = async (text, profileName) => {
    await a.keyboard.press('Control+End')
    const base = await b.evaluate(() => document.querySelector('.cm-editor[data-path="latency.txt"]').meshEditor.text().length)
    await a.evaluate(() => { window.__sent.length = 0; window.__socket.sent.length = 0 })
    await b.evaluate(() => { window.__socket.received.length = 0; window.__arrivals.length = 0 })
    const dir = profileName && opts.profile ? join(opts.profile, profileName) : null
    const profiles = dir ? await Promise.all([[ca, a, 'typist'], [cb, b, 'watcher']].map(([c, p, name]) => startProfile(c, p, name))) : []
    if (dir) await browser.startTracing(undefined, { categories: TRACE_CATEGORIES })
    await a.keyboard.type(text, { delay: KEY_DELAY_MS })
    await b.waitForFunction(([n]) => document.querySelector('.cm-editor[data-path="latency.txt"]').meshEditor.text().length >= n, [base + text.length], { timeout: WAIT_MS })
    if (dir) summariseTrace(JSON.parse((await browser.stopTracing()).toString()), dir)
    for (const p of profiles) await p.stop(dir)
    const sent = await a.evaluate(() => window.__sent)
    const arrivals = await b.evaluate(() => window.__arrivals)
    const latencies = sent.map((t, i) => {
      const arrived = arrivals.find(([, len]) => len >= base + i + 1)
      return arrived ? arrived[0] - t : NaN
    })
    if (latencies.some(Number.isNaN) || sent.length !== text.length) throw new Error(`keys lost: ${sent.length} sent, arrivals ${arrivals.length}`)
    // Where the time goes: the i-th document update A's socket sent and B's socket received
    // belong to the i-th key (one key, one update; nothing else edits the room meanwhile).
    const socketSent = await a.evaluate(() => window.__socket.sent)
    const socketReceived = await b.evaluate(() => window.__socket.received)
    let split = null
    if (socketSent.length === text.length && socketReceived.length === text.length) {
      split = { page: [], relay: [], render: [] }
      sent.forEach((t, i) => {
        split.page.push(socketSent[i] - t)
        split.relay.push(socketReceived[i] - socketSent[i])
        split.render.push(t + latencies[i] - socketReceived[i])
      })
    } else {
      log(`no split: A's socket sent ${socketSent.length} updates and B's received ${socketReceived.length} for ${text.length} keys`)
    }
    return { latencies, split }
  }
  const inLines = await typeAndWatch(proseLines(KEYS), 'lines')
  const oneLine = await typeAndWatch('\n' + 'x'.repeat(KEYS - 1), 'one-line')
  const fmt = (xs) => `${pct(xs, 50).toFixed(1)} / ${pct(xs, 99).toFixed(1)} / ${Math.max(...xs).toFixed(1)} ms`
  if (opts['keys-only']) {
    for (const [what, { latencies, split }] of [['lines of ~45 characters', inLines], ['one long line', oneLine]]) {
      console.log(`keystroke page → page, ${KEYS} keys, ${what} (p50 / p99 / max): ${fmt(latencies)}`)
      if (split) {
        console.log(`  keydown → A's socket sends the update:   ${fmt(split.page)}`)
        console.log(`  A's socket → B's socket (server, TCP):   ${fmt(split.relay)}`)
        console.log(`  B's socket → B's editor DOM:            ${fmt(split.render)}`)
      }
    }
    return
  }

  // --- memory with 10 open files --------------------------------------------------------
  const cm = await newContext('Memory')
  const m = await cm.newPage()
  await loadBig(m)
  const cdp = await cm.newCDPSession(m)
  await cdp.send('Performance.enable')
  const heap = async () => {
    await cdp.send('HeapProfiler.collectGarbage')
    const { metrics } = await cdp.send('Performance.getMetrics')
    const get = (n) => metrics.find(x => x.name === n)?.value ?? NaN
    return { heap: get('JSHeapUsedSize'), nodes: get('Nodes') }
  }
  const one = await heap()
  for (let i = 1; i < OPEN_FILES; i++) {
    await m.click(`[data-testid=file-tree] li[data-path="f${i}.py"] button.file`)
    await m.waitForSelector(`.cm-editor[data-path="f${i}.py"]`)
  }
  const ten = await heap()

  const rows = [
    ['page load to an editable 1 MB file, cold (p50 / max of ' + RUNS + ')', `${pct(cold, 50).toFixed(0)} / ${Math.max(...cold).toFixed(0)} ms`, '≤ 1000 ms'],
    ['page load to an editable 1 MB file, warm (p50 / max)', `${pct(warm, 50).toFixed(0)} / ${Math.max(...warm).toFixed(0)} ms`, '≤ 1000 ms'],
    [`keystroke page → page, ${KEYS} keys in lines of ~45 characters (p50 / p99 / max)`, fmt(inLines.latencies), 'p99 ≤ 10 ms'],
    [`keystroke page → page, ${KEYS} keys in one line, scrolling sideways (p50 / p99 / max)`, fmt(oneLine.latencies), 'reported'],
    ['JavaScript on page load (gzip on the wire / decoded)', `${(jsWire / 1024).toFixed(0)} / ${(jsDecoded / 1024).toFixed(0)} KiB`, '≤ 500 KB gzip'],
    ['JS heap, 1 file open (1 MB) / 10 files open (1 MB + 9 × 100 KB)', `${(one.heap / 2 ** 20).toFixed(1)} / ${(ten.heap / 2 ** 20).toFixed(1)} MiB`, 'reported'],
    ['DOM nodes, 1 / 10 files open', `${one.nodes} / ${ten.nodes}`, 'reported'],
  ]
  const head = ['figure', 'mesh browser client', 'target']
  if (opts.markdown) {
    console.log(`| ${head.join(' | ')} |\n| :--- | ---: | ---: |`)
    for (const r of rows) console.log(`| ${r.join(' | ')} |`)
  } else {
    const w = head.map((_, i) => Math.max(head[i].length, ...rows.map(r => r[i].length)))
    for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i])).join('  '))
  }
  console.log(`\n${cpus().length} cores; ${await browser.version()}; server ${SERVER_BIN.includes('release') ? 'release' : 'debug'} build`)
}

try {
  await main()
} finally {
  for (const c of cleanups.reverse()) await Promise.resolve().then(c).catch(() => {})
  rmSync(tmp, { recursive: true, force: true })
}
