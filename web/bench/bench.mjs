// The browser client's benchmark: what a person opening a join link waits for and what the
// page costs, measured in real Chromium against a real mesh-server, with the room's files
// shared from a folder by a real `mesh-proxy share` (as a user would put a 1 MB file in).
//
//   scripts/bench-web [--runs N] [--keys N] [--markdown] [--keys-only]
//
// Prints one table: page load to an editable 1 MB file (cold: a browser that never saw the
// room; warm: the same browser opening the link again, with the room kept in IndexedDB),
// keystroke latency from one page to another (p50/p99/max over --keys keys typed at a
// person's pace), the JavaScript shipped on page load (bytes on the wire, gzip), and the
// page's memory with 10 open files. Targets from the browser client's issue beside each.
// `--keys-only` measures the keystrokes only and splits their latency into the sending page
// (keydown to its socket sending the update), the server with the network (A's socket to
// B's socket, B's wait for its main thread included) and the receiving page (B's socket to
// its editor's DOM).
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
  const base = await b.evaluate(() => document.querySelector('.cm-editor[data-path="latency.txt"]').meshEditor.text().length)
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
  await a.keyboard.press('Control+End')
  await a.evaluate(() => { window.__sent.length = 0; window.__socket.sent.length = 0 })
  await b.evaluate(() => { window.__socket.received.length = 0 })
  await a.keyboard.type('x'.repeat(KEYS), { delay: KEY_DELAY_MS })
  await b.waitForFunction(([n]) => document.querySelector('.cm-editor[data-path="latency.txt"]').meshEditor.text().length >= n, [base + KEYS], { timeout: WAIT_MS })
  const sent = await a.evaluate(() => window.__sent)
  const arrivals = await b.evaluate(() => window.__arrivals)
  const latencies = sent.map((t, i) => {
    const arrived = arrivals.find(([, len]) => len >= base + i + 1)
    return arrived ? arrived[0] - t : NaN
  })
  if (latencies.some(Number.isNaN) || sent.length !== KEYS) throw new Error(`keys lost: ${sent.length} sent, arrivals ${arrivals.length}`)
  // Where the time goes: the i-th document update A's socket sent and B's socket received
  // belong to the i-th key (one key, one update; nothing else edits the room meanwhile).
  const socketSent = await a.evaluate(() => window.__socket.sent)
  const socketReceived = await b.evaluate(() => window.__socket.received)
  let split = null
  if (socketSent.length === KEYS && socketReceived.length === KEYS) {
    const legs = { page: [], relay: [], render: [] }
    sent.forEach((t, i) => {
      legs.page.push(socketSent[i] - t)
      legs.relay.push(socketReceived[i] - socketSent[i])
      legs.render.push(t + latencies[i] - socketReceived[i])
    })
    split = legs
  } else {
    log(`no split: A's socket sent ${socketSent.length} updates and B's received ${socketReceived.length} for ${KEYS} keys`)
  }
  if (opts['keys-only']) {
    const fmt = (xs) => `${pct(xs, 50).toFixed(1)} / ${pct(xs, 99).toFixed(1)} / ${Math.max(...xs).toFixed(1)} ms`
    console.log(`keystroke page → page, ${KEYS} keys (p50 / p99 / max): ${fmt(latencies)}`)
    if (split) {
      console.log(`  keydown → A's socket sends the update:   ${fmt(split.page)}`)
      console.log(`  A's socket → B's socket (server, TCP):   ${fmt(split.relay)}`)
      console.log(`  B's socket → B's editor DOM:            ${fmt(split.render)}`)
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
    [`keystroke page → page, ${KEYS} keys (p50 / p99 / max)`, `${pct(latencies, 50).toFixed(1)} / ${pct(latencies, 99).toFixed(1)} / ${Math.max(...latencies).toFixed(1)} ms`, 'p99 ≤ 10 ms'],
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
