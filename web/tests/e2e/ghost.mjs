// The ghost's panel end to end in real Chromium (decision 013): a real mesh-server, a real
// `mesh-ghost` joined by a writer link, and an OpenAI-compatible provider on loopback that
// streams scripted answers (no model). Ada asks from the panel with a line selected: the
// request carries the selection, the suggestion shows as a diff in every page, and nothing
// changes until it is accepted; a rejected one leaves the file untouched; an accepted one
// changes the file in both writers' pages. A reader sees the panel read-only and can ask for
// explanations only.
//
//   node tests/e2e/ghost.mjs      (scripts/test-web runs it after tests/e2e.mjs)
//
// MESH_SERVER_BIN, CHROMIUM as for tests/e2e.mjs; MESH_GHOST_BIN names mesh-ghost (default:
// target/debug/ of the repo, or of CARGO_TARGET_DIR). Screenshots go to artifacts/web-ghost/.
// The last line says `N passed, N failed`. Every wait is for a condition; none sleeps.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target')
const SERVER_BIN = process.env.MESH_SERVER_BIN ?? join(TARGET, 'debug', 'mesh-server')
const GHOST_BIN = process.env.MESH_GHOST_BIN ?? join(TARGET, 'debug', 'mesh-ghost')
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const ARTIFACTS = join(ROOT, 'artifacts', 'web-ghost')
/** How long any one expectation may take to come true: generous for a loaded 2-core CI. */
const WAIT_MS = 30_000
const wait = { timeout: WAIT_MS }
/** The pause between the scripted answer's pieces: slow enough to see progress. */
const PIECE_MS = 30

const tmp = mkdtempSync(join(tmpdir(), 'mesh-web-ghost-'))
const cleanups = []
const results = []
const pages = {}
let shotNo = 0

function log (...args) { console.log('[ghost]', ...args) }

// --- the scripted provider: OpenAI-compatible chat completions, streamed -----------------

/** Answers, one per request, in order. */
const answers = []
/** The bodies of the requests it received. */
const received = []

async function startProvider () {
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', c => { body += c })
    req.on('end', async () => {
      if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
        res.writeHead(404).end()
        return
      }
      received.push(JSON.parse(body))
      const answer = answers.shift() ?? 'I have nothing more to say.'
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      for (let i = 0; i < answer.length; i += 6) {
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: answer.slice(i, i + 6) } }] })}\n\n`)
        await new Promise(r => setTimeout(r, PIECE_MS))
      }
      res.end('data: [DONE]\n\n')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanups.push(() => new Promise(r => server.close(r)))
  return `http://127.0.0.1:${server.address().port}/v1`
}

// --- processes -------------------------------------------------------------------------

function track (child, name) {
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, 'SIGTERM')
      await once(child, 'exit')
    }
  })
  child.on('exit', (code, signal) => { if (code) log(`${name} exited with ${code ?? signal}`) })
}

async function startServer () {
  const child = spawn(SERVER_BIN, ['--listen', '127.0.0.1:0', '--data-dir', join(tmp, 'data')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, MESH_LOG: process.env.MESH_LOG ?? 'warn' },
  })
  track(child, 'mesh-server')
  const lines = createInterface({ input: child.stdout })
  const [first] = await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => { throw new Error(`mesh-server exited (${code}) before listening; is ${SERVER_BIN} built?`) }),
  ])
  const m = /^mesh-server listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(first)
  if (!m) throw new Error(`unexpected first line from mesh-server: ${first}`)
  lines.on('line', () => {})
  return m[1]
}

function startGhost (link, providerUrl) {
  const child = spawn(GHOST_BIN, ['--link', link, '--provider-url', providerUrl, '--model', 'scripted'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, MESH_GHOST_API_KEY: 'sk-e2e-never-shown', MESH_LOG: 'warn' },
  })
  track(child, 'mesh-ghost')
}

// --- pages -------------------------------------------------------------------------------

let serverUrl, browser

async function newPage (label) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  page.problems = []
  page.on('pageerror', e => page.problems.push(`page error: ${e.message}`))
  page.on('console', m => { if (m.type() === 'error') page.problems.push(`console error: ${m.text()}`) })
  page.on('request', r => {
    const url = r.url()
    if (!url.startsWith(`${serverUrl}/`) && !url.startsWith(serverUrl.replace('http', 'ws')) && !url.startsWith('data:')) {
      page.problems.push(`request to another origin: ${url}`)
    }
  })
  pages[label] = page
  return page
}

async function shot (name) {
  shotNo++
  for (const [label, page] of Object.entries(pages)) {
    await page.screenshot({ path: join(ARTIFACTS, `${String(shotNo).padStart(2, '0')}-${name}-${label}.png`) }).catch(() => {})
  }
}

async function step (name, fn) {
  const started = Date.now()
  try {
    await fn()
    for (const [label, page] of Object.entries(pages)) {
      if (page.problems.length) throw new Error(`page ${label}: ${page.problems.splice(0).join('; ')}`)
    }
    results.push({ name, ok: true })
    log(`ok   ${name} (${Date.now() - started} ms)`)
    await shot(name)
  } catch (e) {
    results.push({ name, ok: false, error: e })
    log(`FAIL ${name}: ${e.stack ?? e}`)
    await shot(`${name}-failed`)
    throw e
  }
}

const editorText = (page, path) => page.evaluate(p => document.querySelector(`.cm-editor[data-path="${p}"]`)?.meshEditor?.text() ?? null, path)
const waitEditor = (page, path, want, what) =>
  page.waitForFunction(([p, w]) => document.querySelector(`.cm-editor[data-path="${p}"]`)?.meshEditor?.text() === w, [path, want], wait)
    .catch(e => { throw new Error(`${what}: ${e.message}`) })

async function joinAs (page, link, name) {
  await page.goto(link)
  await page.fill('[data-testid=name-gate] input', name)
  await page.click('[data-testid=name-gate] button[type=submit]')
  await page.waitForSelector('[data-testid=status][data-state=connected]', wait)
}

/** Selects line `n` of the file in front (1-based), as a person does with the keyboard. */
async function selectLine (page, path, n) {
  await page.click(`.cm-editor[data-path="${path}"] .cm-content`)
  await page.keyboard.press('Control+Home')
  for (let i = 1; i < n; i++) await page.keyboard.press('ArrowDown')
  await page.keyboard.press('Home')
  await page.keyboard.press('Shift+End')
}

async function ask (page, text) {
  await page.fill('[data-testid=ghost-input]', text)
  await page.press('[data-testid=ghost-input]', 'Enter')
}

const STARTER = 'name = input("Your name? ")\nprint(f"Hello, {name}!")\n'
const GREETED = 'name = input("Your name? ")\nprint(f"Hello, {name}! Welcome to mesh.")\n'
const EDIT = 'Here is a warmer greeting.\n<<<<<<< SEARCH main.py\nprint(f"Hello, {name}!")\n=======\nprint(f"Hello, {name}! Welcome to mesh.")\n>>>>>>> REPLACE\n'

async function main () {
  rmSync(ARTIFACTS, { recursive: true, force: true })
  mkdirSync(ARTIFACTS, { recursive: true })
  const providerUrl = await startProvider()
  serverUrl = await startServer()
  log(`server at ${serverUrl}, provider at ${providerUrl}`)
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  cleanups.unshift(() => browser.close())

  const ada = await newPage('ada')
  let joinLink, readLink
  await step('ada-creates-a-room-and-the-ghost-joins', async () => {
    await ada.goto(`${serverUrl}/`)
    await ada.fill('[data-testid=create] input[name=name]', 'Ada')
    await ada.fill('[data-testid=create] input[name=session]', 'ghost')
    await ada.selectOption('[data-testid=create] select', 'python')
    await ada.click('[data-testid=create] button[type=submit]')
    await waitEditor(ada, 'main.py', STARTER, 'the starter file')
    joinLink = await ada.inputValue('[data-testid=join-link]')
    readLink = await ada.inputValue('[data-testid=read-link]')
    await ada.waitForSelector('[data-testid=ghost-none]:has-text("No ghost")', wait)
    startGhost(joinLink, providerUrl)
    await ada.waitForSelector('[data-testid=people] li:has-text("ghost (scripted)")', wait)
    await ada.waitForSelector('[data-testid=ghost-none]:has-text("The ghost is here")', wait)
  })

  const bo = await newPage('bo')
  const rob = await newPage('rob')
  await step('a-writer-and-a-reader-join', async () => {
    await joinAs(bo, joinLink, 'Bo')
    await waitEditor(bo, 'main.py', STARTER, 'the file in Bo\'s page')
    await joinAs(rob, readLink, 'Rob')
    await waitEditor(rob, 'main.py', STARTER, 'the file in Rob\'s page')
    const robModes = await rob.locator('[data-testid=ghost-mode] option').evaluateAll(os => os.map(o => o.value))
    if (JSON.stringify(robModes) !== '["explain"]') throw new Error(`a reader may choose ${robModes}`)
  })

  await step('asked-from-the-panel-with-the-selection-the-suggestion-shows-as-a-diff-everywhere', async () => {
    answers.push(EDIT)
    await selectLine(ada, 'main.py', 2)
    await ask(ada, 'make the greeting warmer')
    for (const page of [ada, bo, rob]) {
      await page.waitForSelector('[data-testid=ghost-suggestion-1] .ghost-diff[data-path="main.py"] .add:has-text("Welcome to mesh.")', wait)
      await page.waitForSelector('[data-testid=ghost-suggestion-1] .ghost-diff .del:has-text("Hello, {name}!")', wait)
    }
    const asked = JSON.stringify(received[0].messages)
    if (!asked.includes('about lines 2-2 of main.py, selected:')) throw new Error(`the selection did not reach the model: ${asked.slice(0, 400)}`)
    await ada.waitForSelector('[data-testid=ghost-requests] li[data-id="1"][data-status=done]', wait)
    for (const page of [ada, bo]) if (await editorText(page, 'main.py') !== STARTER) throw new Error('a suggestion changed the file')
    if (await rob.locator('[data-testid=ghost-accept]').count() !== 0) throw new Error('the reader is offered Accept')
    if (await bo.locator('[data-testid=ghost-suggestion-1] [data-testid=ghost-accept]').count() !== 1) throw new Error('the writer Bo is not offered Accept')
  })

  await step('rejected-the-file-is-untouched', async () => {
    await bo.click('[data-testid=ghost-suggestion-1] [data-testid=ghost-reject]')
    for (const page of [ada, bo, rob]) {
      await page.waitForSelector('[data-testid=ghost-suggestion-1]', { state: 'detached', timeout: WAIT_MS })
    }
    await ada.waitForSelector('.chat-log li:has-text("Rejected suggestion #1 (Bo)")', wait)
    for (const page of [ada, bo, rob]) if (await editorText(page, 'main.py') !== STARTER) throw new Error('a rejected suggestion changed the file')
  })

  await step('accepted-the-file-changes-in-every-page', async () => {
    answers.push(EDIT)
    await ask(ada, 'make the greeting warmer, again')
    await bo.waitForSelector('[data-testid=ghost-suggestion-2] .ghost-diff .add:has-text("Welcome to mesh.")', wait)
    await shot('suggestion-2-waiting')
    await bo.click('[data-testid=ghost-suggestion-2] [data-testid=ghost-accept]')
    for (const [page, who] of [[ada, 'Ada'], [bo, 'Bo'], [rob, 'Rob']]) await waitEditor(page, 'main.py', GREETED, `the accepted change in ${who}'s page`)
    await ada.waitForSelector('[data-testid=ghost-suggestion-2]', { state: 'detached', timeout: WAIT_MS })
  })

  await step('a-reader-asks-for-an-explanation-answered-in-chat', async () => {
    answers.push('It reads a name, then greets it.')
    await ask(rob, 'what does main.py do?')
    await rob.waitForSelector('.chat-log li:has-text("It reads a name, then greets it.")', wait)
    await rob.waitForSelector('[data-testid=ghost-requests] li[data-id="3"][data-status=done]:has-text("explain")', wait)
    if (await editorText(rob, 'main.py') !== GREETED) throw new Error('an explanation changed the file')
  })
}

let failed = false
try {
  await main()
} catch (e) {
  failed = true
  if (results.every(r => r.ok)) log(`FAIL setup: ${e.stack ?? e}`)
} finally {
  for (const c of cleanups.reverse()) await Promise.resolve().then(c).catch(e => log(`cleanup: ${e.message}`))
  rmSync(tmp, { recursive: true, force: true })
}
const passed = results.filter(r => r.ok).length
const failedCount = results.length - passed + (failed && results.every(r => r.ok) ? 1 : 0)
console.log(`browser ghost e2e: ${passed} passed, ${failedCount} failed`)
process.exit(failedCount ? 1 : 0)
