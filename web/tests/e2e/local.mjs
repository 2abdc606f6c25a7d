// In-browser execution's end-to-end steps (called by tests/e2e.mjs with its context): programs
// run in page A's browser through the run panel ("where: in this browser"), JavaScript in a
// sandboxed worker and Python in Pyodide served by the suite's mesh-server. The harness fails
// a step on any request to another origin and any console error, so Pyodide coming from
// anywhere but mesh-server fails here.
//
// Every wait is for a condition (text in the terminal, the run's state); none sleeps.

import * as Y from 'yjs'
import { runsOf, waitRun as waitRunIn } from './run-panel.mjs'

/** How long a local run may take to show something: the first Python run downloads and
 * starts Pyodide (about 6 MB) from a debug build of the server on a loaded machine. */
const RUN_WAIT_MS = 120_000

/** A JavaScript program that needs a second room file and stdin, and reports what the
 * sandbox left it of the network and the origin's storage. */
const HELLO_JS = [
  "const { greet } = require('./lib/greet')",
  "const name = require('fs').readFileSync(0, 'utf8').trim()",
  'console.log(greet(name))',
  "console.error('to stderr', { n: 1 })",
  "console.log('sandbox:', typeof fetch, typeof XMLHttpRequest, typeof WebSocket, typeof importScripts, typeof indexedDB, typeof caches)",
  "setTimeout(() => console.log('a timer ran last'), 20)",
  '',
].join('\n')
const GREET_JS = 'exports.greet = (name) => `Hello from JS, ${name}!`\n'

/** A Python program that prompts while it runs, reads the answer with input() and imports
 * a second room file. */
const APP_PY = [
  'import sys',
  'import util',
  'print("starting", flush=True)',
  'name = input("Name? ")',
  'print(util.greet(name))',
  'print("a warning", file=sys.stderr)',
  '',
].join('\n')
const UTIL_PY = 'def greet(name):\n    return f"Hello from Python, {name}!"\n'

export async function localSteps (ctx) {
  const { a, b, peer, WAIT_MS, step } = ctx

  const waitRun = (page, want, what, timeout = RUN_WAIT_MS) => waitRunIn(page, want, what, timeout)
  const outputOf = (page, id) => page.evaluate((i) => document.querySelector('[data-testid=run-panel]').meshRuns.output(i), id)
  const terminalText = (page) => page.evaluate(() => document.querySelector('[data-testid=run-terminal] .xterm-rows')?.textContent ?? null)
  const waitTerminal = (page, needle, what, timeout = RUN_WAIT_MS) =>
    page.waitForFunction((n) => (document.querySelector('[data-testid=run-terminal] .xterm-rows')?.textContent ?? '').includes(n), needle, { timeout })
      .catch(async e => { throw new Error(`${what}: ${e.message}\nterminal: ${JSON.stringify(await terminalText(page))}`) })
  const statusOf = (page) => page.textContent('[data-testid=run-status]')
  const waitStatus = (page, re, what, timeout = RUN_WAIT_MS) =>
    page.waitForFunction((src) => new RegExp(src).test(document.querySelector('[data-testid=run-status]')?.textContent ?? ''), re.source, { timeout })
      .catch(async e => { throw new Error(`${what}: ${e.message}; status: ${await statusOf(page)}`) })
  const addFiles = async (files) => {
    peer.doc.transact(() => {
      for (const [path, text] of Object.entries(files)) {
        const t = new Y.Text()
        t.insert(0, text)
        peer.doc.getMap('files').set(path, t)
      }
    })
    for (const path of Object.keys(files)) await a.waitForSelector(`[data-testid=file-tree] li[data-path="${path}"]`, { timeout: WAIT_MS })
  }
  /** Opens `path` in page A and runs it in this browser with the Run button. */
  const runHere = async (path) => {
    await a.click(`[data-testid=file-tree] li[data-path="${path}"] button.file`, { timeout: WAIT_MS })
    // The dock may show another panel (the debug steps before leave it in front).
    await a.click('[data-testid=dock-tab-run]')
    await a.waitForSelector(`[data-testid=run-file]:text("${path}")`, { timeout: WAIT_MS })
    await a.selectOption('[data-testid=run-where]', 'browser')
    const before = new Set((await runsOf(a)).map(r => r.id))
    await a.click('[data-testid=run-button]')
    const run = await a.waitForFunction(([p, seen]) => document.querySelector('[data-testid=run-panel]').meshRuns.list()
      .find(r => r.path === p && r.where === 'browser' && !seen.includes(r.id)), [path, [...before]], { timeout: WAIT_MS })
      .then(h => h.jsonValue())
    return run
  }

  // Worker scripts as the browser got them, to check the policy each carried.
  const requested = []
  a.on('request', (req) => requested.push(req.url()))
  const workerHeaders = new Map()
  a.on('response', async (resp) => {
    const m = /\/assets\/(local-(js|py)-worker)-[^/]+\.js$/.exec(resp.url())
    if (m) workerHeaders.set(m[1], await resp.allHeaders())
  })

  await step('local-page-is-isolated-and-loads-no-runtime-up-front', async () => {
    for (const page of [a, b]) {
      if (!(await page.evaluate(() => globalThis.crossOriginIsolated))) throw new Error('the room page is not cross-origin isolated: no SharedArrayBuffer for stdin')
    }
    // Page B never ran anything in the browser: neither the runner nor Pyodide was fetched.
    const loaded = await b.evaluate(() => performance.getEntriesByType('resource').map(e => e.name))
    const early = loaded.filter(u => /pyodide|local-runner|local-(js|py)-worker/.test(u))
    if (early.length) throw new Error(`fetched on page load: ${early.join(', ')}`)
  })

  await step('local-javascript-reads-stdin-and-requires-a-room-file', async () => {
    await addFiles({ 'js/hello.js': HELLO_JS, 'js/lib/greet.js': GREET_JS })
    const run = await runHere('js/hello.js')
    await waitRun(a, { id: run.id, state: 'running' }, 'the JavaScript run running')
    // It blocks in readFileSync(0) until stdin closes: type a line, then EOF.
    await a.fill('[data-testid=run-stdin]', 'Zoë')
    await a.click('[data-testid=run-eof]')
    await waitRun(a, { id: run.id, state: 'exited' }, 'the JavaScript run ended')
    await waitStatus(a, /^exit 0 · /, 'exit 0')
    await waitTerminal(a, 'Hello from JS, Zoë!', 'the greeting in the terminal')
    const out = await outputOf(a, run.id)
    for (const want of ['Hello from JS, Zoë!\n', "to stderr { n: 1 }\n", 'sandbox: undefined undefined undefined undefined undefined undefined\n']) {
      if (!out.includes(want)) throw new Error(`${JSON.stringify(want)} is not in the output: ${JSON.stringify(out)}`)
    }
    if (!out.endsWith('a timer ran last\n')) throw new Error(`the run ended before its timer: ${JSON.stringify(out)}`)
    const policy = workerHeaders.get('local-js-worker')?.['content-security-policy']
    if (policy !== "default-src 'none'; script-src 'unsafe-eval'") throw new Error(`the JavaScript worker came with the policy ${policy}`)
  })

  await step('local-python-input-while-running-and-import', async () => {
    await addFiles({ 'py/app.py': APP_PY, 'py/util.py': UTIL_PY })
    const run = await runHere('py/app.py')
    // The prompt shows while the program waits in input(): typed text goes to a live program.
    await waitTerminal(a, 'Name? ', 'the prompt from input()')
    await waitRun(a, { id: run.id, state: 'running' }, 'the Python run waiting for input')
    await a.fill('[data-testid=run-stdin]', 'Zoë')
    await a.press('[data-testid=run-stdin]', 'Enter')
    await waitRun(a, { id: run.id, state: 'exited' }, 'the Python run ended')
    await waitStatus(a, /^exit 0 · /, 'exit 0')
    await waitTerminal(a, 'Hello from Python, Zoë!', 'the greeting in the terminal')
    const out = await outputOf(a, run.id)
    for (const want of ['starting\n', 'Name? ', 'Hello from Python, Zoë!\n', 'a warning\n']) {
      if (!out.includes(want)) throw new Error(`${JSON.stringify(want)} is not in the output: ${JSON.stringify(out)}`)
    }
    // The harness sees the worker's requests too: Pyodide came from this server (any other
    // origin would have failed the step).
    if (!requested.some(u => u.startsWith(`${ctx.serverUrl}/assets/pyodide-`) && u.endsWith('/pyodide.asm.wasm'))) {
      throw new Error(`Pyodide's WebAssembly was not seen coming from the server: ${requested.filter(u => /pyodide/.test(u)).join(', ')}`)
    }
    const policy = workerHeaders.get('local-py-worker')?.['content-security-policy'] ?? ''
    if (!policy.includes("'wasm-unsafe-eval'") || /'unsafe-eval'/.test(policy)) throw new Error(`the Python worker came with the policy ${policy}`)
  })

  await step('local-errors-end-with-their-trace-and-exit-1', async () => {
    await addFiles({
      'js/boom.js': "const { greet } = require('./lib/greet')\nfunction explode () {\n  throw new Error('boom ' + greet('x'))\n}\nexplode()\n",
      'py/boom.py': 'import util\n\ndef explode():\n    raise ValueError("boom " + util.greet("x"))\n\nexplode()\n',
      'py/quits.py': 'import sys\nprint("leaving")\nsys.exit(3)\n',
    })
    for (const [path, code, needles] of [
      ['js/boom.js', 1, ['Uncaught Error: boom Hello from JS, x!', 'js/boom.js:3']],
      ['py/boom.py', 1, ['Traceback (most recent call last):', 'py/boom.py", line 4, in explode', 'ValueError: boom Hello from Python, x!']],
      ['py/quits.py', 3, ['leaving\n']],
    ]) {
      const run = await runHere(path)
      const ended = await waitRun(a, { id: run.id, state: 'exited' }, `${path} ended`)
      if (ended.end?.code !== code) throw new Error(`${path} ended with ${JSON.stringify(ended.end)}, not exit ${code}`)
      const out = await outputOf(a, run.id)
      for (const n of needles) if (!out.includes(n)) throw new Error(`${JSON.stringify(n)} is not in ${path}'s output: ${JSON.stringify(out)}`)
      if (/local-(js|py)-worker|assets\//.test(out)) throw new Error(`the runner's own frames show in ${path}'s trace: ${out}`)
    }
  })

  await step('local-time-limit-ends-an-endless-loop', async () => {
    await addFiles({ 'js/spin.js': "console.log('spinning')\nfor (;;) {}\n" })
    const run = await runHere('js/spin.js')
    await waitTerminal(a, 'spinning', 'the output before the loop')
    const ended = await waitRun(a, { id: run.id, state: 'exited' }, 'the endless run ended by the time limit', 60_000)
    await waitStatus(a, /^ended by the time limit · no exit code · /, 'the time limit named')
    if (ended.end?.limit !== 'time' || ended.end.durationMs < 9_000) throw new Error(`it ended otherwise: ${JSON.stringify(ended.end)}`)
  })

  await step('local-stop-ends-an-endless-python-loop', async () => {
    await addFiles({ 'py/spin.py': 'print("spinning in python", flush=True)\nwhile True:\n    pass\n' })
    const run = await runHere('py/spin.py')
    await waitTerminal(a, 'spinning in python', 'the output before the loop')
    await waitRun(a, { id: run.id, state: 'running' }, 'the Python loop running')
    await a.click('[data-testid=stop-button]')
    const ended = await waitRun(a, { id: run.id, state: 'exited' }, 'the stopped run', WAIT_MS)
    await waitStatus(a, /^stopped after \d/, 'the stop')
    if (ended.end?.durationMs >= 10_000) throw new Error(`Stop waited for the time limit: ${JSON.stringify(ended.end)}`)
  })

  await step('local-output-limit-ends-a-flood', async () => {
    await addFiles({ 'js/flood.js': "for (;;) console.log('x'.repeat(999))\n" })
    const run = await runHere('js/flood.js')
    const ended = await waitRun(a, { id: run.id, state: 'exited' }, 'the flood ended', 60_000)
    await waitStatus(a, /^ended by the output limit/, 'the output limit named')
    if (ended.end?.limit !== 'output') throw new Error(`it ended otherwise: ${JSON.stringify(ended.end)}`)
    const out = await outputOf(a, run.id)
    if (!out.startsWith('x'.repeat(999) + '\n')) throw new Error('the flood\'s output is not there')
    // The later steps type into main.py: leave it in front, as it was.
    await a.click('[data-testid=file-tree] li[data-path="main.py"] button.file', { timeout: WAIT_MS })
    await a.waitForSelector('[data-testid=run-file]:text("main.py")', { timeout: WAIT_MS })
  })
}
