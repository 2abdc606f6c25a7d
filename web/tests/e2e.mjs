// The browser client end to end, in real Chromium (playwright-core + Debian's chromium):
// a real mesh-server on a free loopback port, two writer pages, a reader page, a real
// `mesh-proxy join` on a folder, and an awareness peer (a plain Yjs client speaking the
// room protocol) that checks the browser's cursor is published in mesh's shape.
//
//   node tests/e2e.mjs            (scripts/test-web builds everything first)
//   MESH_E2E_ONLY=host node tests/e2e.mjs   only host control's steps (tests/e2e/host.mjs)
//
// MESH_SERVER_BIN / MESH_PROXY_BIN name the binaries (default: target/debug/ of the repo,
// or of CARGO_TARGET_DIR); CHROMIUM the browser (default /usr/bin/chromium). Screenshots of
// every step go to artifacts/web/. The last line says `N passed, N failed`.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { runSteps } from './e2e/run.mjs'
import { debugSteps } from './e2e/debug.mjs'
import { localSteps } from './e2e/local.mjs'
import { hostSteps } from './e2e/host.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target')
const SERVER_BIN = process.env.MESH_SERVER_BIN ?? join(TARGET, 'debug', 'mesh-server')
const PROXY_BIN = process.env.MESH_PROXY_BIN ?? join(TARGET, 'debug', 'mesh-proxy')
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const ARTIFACTS = join(ROOT, 'artifacts', 'web')

/** How long any one expectation may take to come true: generous for a loaded 2-core CI. */
const WAIT_MS = 30_000
/** The pause between keys when typing "as a person does". */
const KEY_DELAY_MS = 35

const tmp = mkdtempSync(join(tmpdir(), 'mesh-web-e2e-'))
const folder = join(tmp, 'folder')
const results = []
const cleanups = []

function log (...args) { console.log('[e2e]', ...args) }

/** Polls `cond` until it holds (for conditions outside the browser: files, the peer). */
async function until (what, cond) {
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    const v = await cond()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 25))
  }
}

// --- the server and the proxy --------------------------------------------------------------

let serverChild = null
/** Set while the suite has the server stopped on purpose. */
let serverDown = false

/** Starts the server (on `port`, 0 for any free one) over the suite's data directory. */
async function startServer (port = 0) {
  const child = spawn(SERVER_BIN, ['--listen', `127.0.0.1:${port}`, '--data-dir', join(tmp, 'data'), '--run-images', 'local'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    // Runs use the images scripts/build-images makes (for machines without a registry, CI included), unless MESH_RUN_IMAGES says otherwise.
    env: { ...process.env, MESH_LOG: process.env.MESH_LOG ?? 'warn', MESH_RUN_IMAGES: process.env.MESH_RUN_IMAGES ?? 'local' },
  })
  serverChild = child
  cleanups.push(() => stop(child, 'mesh-server'))
  const lines = createInterface({ input: child.stdout })
  const [first] = await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => { throw new Error(`mesh-server exited (${code}) before listening; is ${SERVER_BIN} built?`) }),
  ])
  const m = /^mesh-server listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(first)
  if (!m) throw new Error(`unexpected first line from mesh-server: ${first}`)
  lines.on('line', () => {}) // keep draining
  return m[1]
}

/** Stops a child we started, by its pid, and waits for it to exit. */
async function stop (child, name) {
  if (child.exitCode !== null || child.signalCode !== null) return
  process.kill(child.pid, 'SIGTERM')
  const timer = setTimeout(() => { log(`${name} did not stop on SIGTERM; killing it`); process.kill(child.pid, 'SIGKILL') }, 10_000)
  await once(child, 'exit')
  clearTimeout(timer)
}

async function startProxyJoin (serverUrl, link) {
  const state = join(tmp, 'proxy-state')
  const child = spawn(PROXY_BIN, ['join', link, folder], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, MESH_SERVER: serverUrl, MESH_NAME: 'Proxy', XDG_STATE_HOME: state, XDG_CONFIG_HOME: state },
  })
  cleanups.push(() => stop(child, 'mesh-proxy'))
  const lines = createInterface({ input: child.stdout })
  for await (const line of lines) {
    if (line.startsWith('Joined')) {
      lines.on('line', () => {})
      return line
    }
  }
  throw new Error('mesh-proxy join ended before printing "Joined"')
}

const readFile = (path) => (existsSync(join(folder, path)) ? readFileSync(join(folder, path), 'utf8') : null)

// --- an awareness peer: a plain Yjs client on the room socket ------------------------------

class Peer {
  constructor (wsUrl, name, color) {
    this.doc = new Y.Doc()
    this.awareness = new awarenessProtocol.Awareness(this.doc)
    this.synced = false
    this.ws = new WebSocket(wsUrl)
    this.ws.binaryType = 'arraybuffer'
    this.ws.on('open', () => {
      this.sendMesh({ type: 'hello', version: 1, name, color, client: 'test-peer', doc_client_id: this.doc.clientID })
      const enc = encoding.createEncoder()
      encoding.writeVarUint(enc, 0)
      syncProtocol.writeSyncStep1(enc, this.doc)
      this.ws.send(encoding.toUint8Array(enc))
    })
    this.ws.on('message', (data) => this.onFrame(new Uint8Array(data)))
    this.doc.on('update', (update, origin) => {
      if (origin === this) return
      const enc = encoding.createEncoder()
      encoding.writeVarUint(enc, 0)
      syncProtocol.writeUpdate(enc, update)
      this.ws.send(encoding.toUint8Array(enc))
    })
    this.awareness.on('update', ({ added, updated }, origin) => {
      if (origin !== 'local') return
      const enc = encoding.createEncoder()
      encoding.writeVarUint(enc, 1)
      encoding.writeVarUint8Array(enc, awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...added, ...updated].filter(c => c === this.doc.clientID)))
      this.ws.send(encoding.toUint8Array(enc))
    })
  }

  sendMesh (msg) {
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, 100)
    encoding.writeVarUint8Array(enc, new TextEncoder().encode(JSON.stringify(msg)))
    this.ws.send(encoding.toUint8Array(enc))
  }

  onFrame (bytes) {
    const dec = decoding.createDecoder(bytes)
    while (decoding.hasContent(dec)) {
      const tag = decoding.readVarUint(dec)
      if (tag === 0) {
        const enc = encoding.createEncoder()
        encoding.writeVarUint(enc, 0)
        const kind = syncProtocol.readSyncMessage(dec, enc, this.doc, this)
        if (encoding.length(enc) > 1) this.ws.send(encoding.toUint8Array(enc))
        if (kind === syncProtocol.messageYjsSyncStep2) this.synced = true
      } else if (tag === 1) {
        awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(dec), this)
      } else if (tag === 100) {
        decoding.readVarUint8Array(dec)
      } else {
        return
      }
    }
  }

  text (path) { return this.doc.getMap('files').get(path)?.toString() ?? null }

  /** The awareness state of the client whose `user.name` is `name`. */
  stateOf (name) {
    for (const [id, s] of this.awareness.getStates()) if (id !== this.doc.clientID && s?.user?.name === name) return s
    return null
  }

  close () {
    this.awareness.destroy()
    this.ws.close()
  }
}

// --- pages -------------------------------------------------------------------------------

let browser
let serverUrl
const pages = {}
let shotNo = 0

/** A page in a browser context of its own (its own storage), or in `context`. */
async function newPage (label, context = null) {
  context ??= await browser.newContext({ viewport: { width: 1280, height: 760 } })
  const page = await context.newPage()
  page.problems = []
  page.on('pageerror', e => page.problems.push(`page error: ${e.message}`))
  page.on('console', m => {
    if (m.type() !== 'error') return
    // While the server is down, the browser logs each refused reconnect: expected then.
    if (serverDown && /^WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/ws\//.test(m.text())) return
    page.problems.push(`console error: ${m.text()}`)
  })
  page.on('request', r => {
    const url = r.url()
    if (!url.startsWith(`${serverUrl}/`) && !url.startsWith(serverUrl.replace('http', 'ws')) && !url.startsWith('data:')) {
      page.problems.push(`request to another origin: ${url}`)
    }
  })
  pages[label] = page
  return page
}

/** Closes a page the suite no longer needs (its screenshots stop too). */
async function closePage (label) {
  const page = pages[label]
  if (!page) return
  delete pages[label]
  await page.context().close()
}

async function shot (name) {
  shotNo++
  for (const [label, page] of Object.entries(pages)) {
    await page.screenshot({ path: join(ARTIFACTS, `${String(shotNo).padStart(2, '0')}-${name}-${label}.png`) })
  }
}

const editorText = (page, path) => page.evaluate(p => document.querySelector(`.cm-editor[data-path="${p}"]`)?.meshEditor?.text() ?? null, path)
const editorSelection = (page, path) => page.evaluate(p => document.querySelector(`.cm-editor[data-path="${p}"]`)?.meshEditor?.selection() ?? null, path)
/** Waits until the page's editor of `path` holds every one of `needles`. */
const waitText = (page, path, needles, what) =>
  page.waitForFunction(([p, n]) => {
    const t = document.querySelector(`.cm-editor[data-path="${p}"]`)?.meshEditor?.text()
    return t != null && n.every(x => t.includes(x))
  }, [path, needles], { timeout: WAIT_MS }).catch(e => { throw new Error(`${what}: ${e.message}`) })

async function joinAs (page, link, name) {
  await page.goto(link)
  await page.fill('[data-testid=name-gate] input', name)
  await page.click('[data-testid=name-gate] button[type=submit]')
  await page.waitForSelector('[data-testid=status][data-state=connected]', { timeout: WAIT_MS })
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
    await shot(`${name}-failed`).catch(() => {})
    throw e
  }
}

// --- the suite ---------------------------------------------------------------------------

async function main () {
  rmSync(ARTIFACTS, { recursive: true, force: true })
  mkdirSync(ARTIFACTS, { recursive: true })
  serverUrl = await startServer()
  log(`server at ${serverUrl}`)
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  cleanups.unshift(() => browser.close())
  if (process.env.MESH_E2E_ONLY === 'host') {
    // While working on host control: its steps alone (they start from their own room).
    await hostSteps({ serverUrl, step, shot, until, log, waitText, editorText, newPage, closePage, WAIT_MS, KEY_DELAY_MS })
    return
  }

  const a = await newPage('ada')
  let joinLink, readLink, peer
  const starter = 'name = input("Your name? ")\nprint(f"Hello, {name}!")\n'

  await step('create-session', async () => {
    await a.goto(`${serverUrl}/`)
    await a.fill('[data-testid=create] input[name=name]', 'Ada')
    await a.fill('[data-testid=create] input[name=session]', 'e2e ☕')
    await a.selectOption('[data-testid=create] select', 'python')
    await a.click('[data-testid=create] button[type=submit]')
    await waitText(a, 'main.py', ['Hello'], 'the starter file')
    if (await editorText(a, 'main.py') !== starter) throw new Error('the starter file is not the python starter')
    joinLink = await a.inputValue('[data-testid=join-link]')
    readLink = await a.inputValue('[data-testid=read-link]')
    if (!joinLink.startsWith(`${serverUrl}/join/`) || !readLink.includes('token=')) throw new Error(`odd links: ${joinLink} ${readLink}`)
    await a.waitForSelector('[data-testid=room-name]:text("e2e ☕")')
  })

  await step('proxy-and-peer-join', async () => {
    const joined = await startProxyJoin(serverUrl, joinLink)
    if (!joined.includes('(1 files)') && !joined.includes('(1 file)')) log(`proxy said: ${joined}`)
    await until('main.py in the proxy\'s folder', () => readFile('main.py') === starter)
    const u = new URL(joinLink)
    peer = new Peer(`${serverUrl.replace('http', 'ws')}/ws/${u.pathname.split('/').pop()}?token=${u.searchParams.get('token')}`, 'Peer', '#00aa00')
    cleanups.unshift(() => peer.close())
    await until('the peer\'s sync', () => peer.synced && peer.text('main.py') === starter)
    await a.waitForSelector('[data-testid=people] li:has-text("Proxy")', { timeout: WAIT_MS })
  })

  const b = await newPage('bo')
  await step('second-page-joins', async () => {
    await joinAs(b, joinLink, 'Bo')
    await waitText(b, 'main.py', ['name = input'], 'the file in the second page')
    await a.waitForSelector('[data-testid=people] li:has-text("Bo")', { timeout: WAIT_MS })
  })

  const adaLine = '# Ada: héllo wörld 👋 漢字 🇫🇷\n'
  const boLine = '# Bo: ñandú 🎉 ça va? 𝄞\n'
  const diskLine = '# disk: ünïcödé 🚀\n'
  await step('typing-both-ways', async () => {
    // Ada types at the end as a person does (with pauses); Bo at the start, as fast as keys go.
    await a.click('.cm-editor[data-path="main.py"] .cm-content')
    await a.keyboard.press('Control+End')
    await b.click('.cm-editor[data-path="main.py"] .cm-content')
    await b.keyboard.press('Control+Home')
    await Promise.all([
      a.keyboard.type(adaLine, { delay: KEY_DELAY_MS }),
      b.keyboard.type(boLine),
    ])
    const lines = [adaLine, boLine]
    const want = t => lines.every(l => t.includes(l))
    await waitText(a, 'main.py', lines, 'both lines in page A')
    await waitText(b, 'main.py', lines, 'both lines in page B')
    await until('both lines on disk and in the room', () => want(readFile('main.py') ?? '') && want(peer.text('main.py') ?? ''))
  })

  await step('disk-edit-reaches-the-pages', async () => {
    const now = readFile('main.py')
    writeFileSync(join(folder, 'main.py'), now + diskLine)
    const want = t => t.includes(diskLine)
    await waitText(a, 'main.py', [diskLine], 'the disk line in page A')
    await waitText(b, 'main.py', [diskLine], 'the disk line in page B')
    // Quiet: every replica byte-equal, each line exactly once.
    const final = await until('byte-equal everywhere', async () => {
      const [ta, tb, disk, room] = [await editorText(a, 'main.py'), await editorText(b, 'main.py'), readFile('main.py'), peer.text('main.py')]
      return ta === tb && tb === disk && disk === room && want(room) ? room : null
    })
    for (const line of [adaLine, boLine, diskLine, starter]) {
      if (final.split(line).length !== 2) throw new Error(`${JSON.stringify(line)} is not in the text exactly once:\n${final}`)
    }
    if (Buffer.from(readFile('main.py'), 'utf8').compare(Buffer.from(final, 'utf8')) !== 0) throw new Error('the folder is not byte-equal')
  })

  await step('cursors-in-mesh-shape', async () => {
    // Each page shows the other's cursor with its name.
    await a.waitForSelector('.cm-mesh-caret-label:text("Bo")', { timeout: WAIT_MS })
    await b.waitForSelector('.cm-mesh-caret-label:text("Ada")', { timeout: WAIT_MS })
    // Ada selects the first line; the peer reads her cursor in mesh's shape, in UTF-16
    // offsets, exactly where her editor has it.
    await a.keyboard.press('Control+Home')
    await a.keyboard.press('Shift+End')
    const [sel] = await editorSelection(a, 'main.py')
    const state = await until('Ada\'s cursor in mesh\'s shape', () => {
      const s = peer.stateOf('Ada')
      const c = s?.cursor
      return c && c.path === 'main.py' && c.anchor === sel.anchor && c.head === sel.head && Array.isArray(c.selections) ? s : null
    })
    if (typeof state.user.color !== 'string' || !/^#[0-9a-f]{6}$/i.test(state.user.color)) throw new Error(`no colour: ${JSON.stringify(state.user)}`)
    if (state.view?.path !== 'main.py' || typeof state.view.start_line !== 'number') throw new Error(`no view: ${JSON.stringify(state.view)}`)
    const bosLine = (await editorText(a, 'main.py')).split('\n')[0]
    if (sel.head - sel.anchor !== bosLine.length) throw new Error('the selection is not in UTF-16 units')
    // The proxy publishes its presence in the same shape.
    await until('the proxy\'s awareness in mesh\'s shape', () => {
      const s = peer.stateOf('Proxy')
      return s && typeof s.user.name === 'string' && (s.cursor == null || typeof s.cursor.head === 'number')
    })
    // A cursor published in mesh's shape by another client shows in both pages, with its
    // selection.
    peer.awareness.setLocalState({ user: { name: 'Peer', color: '#00aa00' }, cursor: { path: 'main.py', anchor: 0, head: 6, selections: [[0, 6]] } })
    for (const page of [a, b]) {
      await page.waitForSelector('.cm-mesh-caret-label:text("Peer")', { timeout: WAIT_MS })
      await page.waitForSelector('.cm-mesh-selection', { timeout: WAIT_MS })
    }
  })

  await step('create-a-file', async () => {
    await a.click('[data-testid=new-file]')
    await a.fill('[data-testid=path-input]', 'src/util.py')
    await a.press('[data-testid=path-input]', 'Enter')
    await b.waitForSelector('[data-testid=file-tree] li[data-path="src/util.py"]', { timeout: WAIT_MS })
    await until('src/util.py on disk', () => readFile('src/util.py') === '')
    await a.waitForSelector('.cm-editor[data-path="src/util.py"]', { timeout: WAIT_MS })
    await a.click('.cm-editor[data-path="src/util.py"] .cm-content')
    await a.keyboard.type('def util():\n    return "ü"\n', { delay: KEY_DELAY_MS })
    // The editor indents after the colon on its own: compare with what the page has.
    const text = await editorText(a, 'src/util.py')
    await until('the new file\'s text on disk', () => readFile('src/util.py') === text)
  })

  await step('rename-a-file', async () => {
    const text = await editorText(a, 'src/util.py')
    const li = a.locator('[data-testid=file-tree] li[data-path="src/util.py"]')
    await li.hover()
    await li.locator('[data-action=rename]').click()
    await a.fill('[data-testid=path-input]', 'src/helpers.py')
    await a.press('[data-testid=path-input]', 'Enter')
    await b.waitForSelector('[data-testid=file-tree] li[data-path="src/helpers.py"]', { timeout: WAIT_MS })
    await b.waitForSelector('[data-testid=file-tree] li[data-path="src/util.py"]', { state: 'detached', timeout: WAIT_MS })
    await until('the rename on disk', () => readFile('src/helpers.py') === text && readFile('src/util.py') === null)
    // The open tab followed the rename.
    await a.waitForSelector('.tab[data-path="src/helpers.py"]', { timeout: WAIT_MS })
  })

  await step('delete-a-file', async () => {
    const li = b.locator('[data-testid=file-tree] li[data-path="src/helpers.py"]')
    await li.hover()
    await li.locator('[data-action=delete]').click()
    await li.locator('[data-action=delete]').click()
    await a.waitForSelector('[data-testid=file-tree] li[data-path="src/helpers.py"]', { state: 'detached', timeout: WAIT_MS })
    await a.waitForSelector('.tab[data-path="src/helpers.py"]', { state: 'detached', timeout: WAIT_MS })
    await until('the delete on disk', () => readFile('src/helpers.py') === null)
  })

  await step('highlighting-for-every-registry-language', async () => {
    const samples = {
      'hl/a.py': 'def f():\n    return "s"  # c\n',
      'hl/a.js': 'const f = () => "s" // c\n',
      'hl/a.c': 'int main(void) { return 0; } /* c */\n',
      'hl/a.cpp': 'int main() { std::string s = "s"; } // c\n',
      'hl/Main.java': 'class Main { String s = "s"; } // c\n',
      'hl/a.go': 'package main\nfunc main() { s := "s" } // c\n',
      'hl/a.rs': 'fn main() { let s = "s"; } // c\n',
      'hl/a.sh': 'echo "s" # c\n',
    }
    peer.doc.transact(() => {
      for (const [path, text] of Object.entries(samples)) {
        const t = new Y.Text()
        t.insert(0, text)
        peer.doc.getMap('files').set(path, t)
      }
    })
    for (const path of Object.keys(samples)) {
      await a.click(`[data-testid=file-tree] li[data-path="${path}"] button.file`, { timeout: WAIT_MS })
      // The grammar loads as its own chunk; highlighted tokens are spans with the classes
      // CodeMirror's highlight style generates (named ͼ…), at least a string and a comment.
      await a.waitForFunction(p => [...document.querySelectorAll(`.cm-editor[data-path="${p}"] .cm-line span`)]
        .filter(s => s.className.includes('ͼ')).length >= 2, path, { timeout: WAIT_MS })
        .catch(() => { throw new Error(`no highlighting in ${path}`) })
    }
    await shot('highlighting')
    peer.doc.transact(() => { for (const path of Object.keys(samples)) peer.doc.getMap('files').delete(path) })
    await a.waitForSelector('[data-testid=file-tree] li[data-path="hl/a.py"]', { state: 'detached', timeout: WAIT_MS })
  })

  await step('chat-both-ways', async () => {
    await a.fill('[data-testid=chat-input]', 'hi from Ada 👋')
    await a.press('[data-testid=chat-input]', 'Enter')
    await b.waitForSelector('[data-testid=chat-log] li:has-text("hi from Ada 👋")', { timeout: WAIT_MS })
    await b.fill('[data-testid=chat-input]', 'hi Ada, Bo here')
    await b.press('[data-testid=chat-input]', 'Enter')
    await a.waitForSelector('[data-testid=chat-log] li:has-text("hi Ada, Bo here")', { timeout: WAIT_MS })
    // History: the room keeps it, so the peer's replica has both, in order.
    await until('the chat history in the room', () => {
      const texts = peer.doc.getArray('chat').toArray().map(e => e.text)
      return texts.join('|') === 'hi from Ada 👋|hi Ada, Bo here'
    })
  })

  await step('follow-mode', async () => {
    // Bo follows Ada: his page opens the file she opens and shows the lines she sees;
    // everyone sees who follows whom; Bo clicking into his editor ends it.
    const long = Array.from({ length: 200 }, (_, i) => `line ${i} = ${i}  # ünïcode ✓`).join('\n') + '\n'
    peer.doc.transact(() => {
      const t = new Y.Text()
      t.insert(0, long)
      peer.doc.getMap('files').set('follow/long.py', t)
    })
    await b.click('[data-testid=people] li:has(.name:text-is("Ada")) [data-action=follow]')
    await b.waitForSelector('[data-testid=follow-banner]:visible:has-text("Following Ada")', { timeout: WAIT_MS })
    await a.waitForSelector('[data-testid=people] li:has(.name:text-is("Bo")) [data-testid=follows]:text("follows you")', { timeout: WAIT_MS })
    const adaConn = Number(await b.getAttribute('[data-testid=people] li:has(.name:text-is("Ada"))', 'data-conn'))
    await until('Bo\'s state says whom he follows', () => peer.stateOf('Bo')?.following === adaConn)
    await a.click('[data-testid=file-tree] li[data-path="follow/long.py"] button.file', { timeout: WAIT_MS })
    await a.click('.cm-editor[data-path="follow/long.py"] .cm-content')
    await a.keyboard.press('Control+End')
    const onScreen = (page, text) => page.evaluate(([t]) => {
      const ed = document.querySelector('.cm-editor[data-path="follow/long.py"]')
      if (!ed || ed.parentElement.hidden) return false
      const box = ed.querySelector('.cm-scroller').getBoundingClientRect()
      return [...ed.querySelectorAll('.cm-line')].some(l => {
        if (!l.textContent.includes(t)) return false
        const r = l.getBoundingClientRect()
        return r.top >= box.top - 1 && r.bottom <= box.bottom + 1
      })
    }, [text])
    await until('the end of the file on Ada\'s screen', () => onScreen(a, 'line 199 = 199  # ünïcode ✓'))
    await until('Bo\'s page showing the lines Ada sees', () => onScreen(b, 'line 199 = 199  # ünïcode ✓'))
    if (await onScreen(b, 'line 0 = 0  # ünïcode ✓')) throw new Error('Bo still sees the top of the file')
    // Ada moves to the top: Bo's view goes with her.
    await a.keyboard.press('Control+Home')
    await until('Bo\'s page back at the top', () => onScreen(b, 'line 0 = 0  # ünïcode ✓'))
    // Bo takes over.
    await b.click('.cm-editor[data-path="follow/long.py"] .cm-content')
    await b.waitForSelector('[data-testid=follow-banner]', { state: 'hidden', timeout: WAIT_MS })
    await b.waitForSelector('[data-testid=notice]:has-text("Stopped following")', { timeout: WAIT_MS })
    await until('Bo\'s state follows no one', () => peer.stateOf('Bo') && peer.stateOf('Bo').following == null)
    await a.waitForSelector('[data-testid=people] [data-testid=follows]', { state: 'detached', timeout: WAIT_MS })
    peer.doc.transact(() => peer.doc.getMap('files').delete('follow/long.py'))
    await a.waitForSelector('[data-testid=file-tree] li[data-path="follow/long.py"]', { state: 'detached', timeout: WAIT_MS })
  })

  const r = await newPage('reader')
  await step('reader-cannot-type', async () => {
    await joinAs(r, readLink, 'Rae')
    await r.waitForSelector('[data-testid=reader-banner]:visible', { timeout: WAIT_MS })
    const banner = await r.textContent('[data-testid=reader-banner]')
    if (!/read-only/.test(banner)) throw new Error(`the banner does not say read-only: ${banner}`)
    await r.waitForSelector('[data-testid=role]:text("reader")')
    if (!(await r.isDisabled('[data-testid=new-file]'))) throw new Error('a reader can create files')
    await waitText(r, 'main.py', [diskLine], 'the file in the reader page')
    await r.click('.cm-editor[data-path="main.py"] .cm-content')
    await r.keyboard.type('SHOULD NOT APPEAR')
    await r.keyboard.press('Enter')
    // Ada writes after the reader's attempt; once the reader has Ada's line, its own keys
    // had every chance to travel.
    await a.click('.cm-editor[data-path="main.py"] .cm-content')
    await a.keyboard.press('Control+End')
    await a.keyboard.type('# after the reader\n')
    await waitText(r, 'main.py', ['# after the reader'], 'Ada\'s line in the reader page')
    for (const [label, page] of [['reader', r], ['ada', a], ['bo', b]]) {
      if ((await editorText(page, 'main.py')).includes('SHOULD NOT')) throw new Error(`the reader's keys reached ${label}`)
    }
    if ((peer.text('main.py') ?? '').includes('SHOULD NOT')) throw new Error('the reader\'s keys reached the room')
    await r.waitForSelector('[data-testid=people] li[data-role=reader]:has-text("Rae")')
    await a.waitForSelector('[data-testid=people] li[data-role=reader]:has-text("Rae")', { timeout: WAIT_MS })
  })

  // The run and debug panels' steps, each in its own file; they get what they need here.
  const ctx = {
    a, b, r, peer, serverUrl, joinLink, readLink, folder, tmp, PROXY_BIN, WAIT_MS, KEY_DELAY_MS,
    step, shot, until, log, waitText, editorText, newPage, closePage, joinAs, readFile, cleanups, stop,
  }
  await runSteps(ctx)
  await debugSteps(ctx)
  await localSteps(ctx)
  await hostSteps(ctx)

  const offlineLine = '# typed while the server was down: ✓ ø 🛰\n'
  await step('server-restart-keeps-typing', async () => {
    // The server stops; Ada keeps typing; the server comes back on the same port and data;
    // every page and the proxy's folder converge with nothing lost.
    peer.close()
    serverDown = true
    await stop(serverChild, 'mesh-server')
    await a.waitForSelector('[data-testid=status][data-state=offline]', { timeout: WAIT_MS })
    await a.click('.cm-editor[data-path="main.py"] .cm-content')
    await a.keyboard.press('Control+End')
    await a.keyboard.type(offlineLine, { delay: KEY_DELAY_MS })
    await startServer(Number(new URL(serverUrl).port))
    for (const page of [a, b, r]) await page.waitForSelector('[data-testid=status][data-state=connected]', { timeout: WAIT_MS })
    serverDown = false
    await waitText(b, 'main.py', [offlineLine], 'the offline line in page B')
    await waitText(r, 'main.py', [offlineLine], 'the offline line in the reader page')
    const final = await until('byte-equal again', async () => {
      const [ta, tb, tr, disk] = [await editorText(a, 'main.py'), await editorText(b, 'main.py'), await editorText(r, 'main.py'), readFile('main.py')]
      return ta === tb && tb === tr && tr === disk && disk.includes(offlineLine) ? disk : null
    })
    for (const line of [adaLine, boLine, diskLine, offlineLine]) {
      if (final.split(line).length !== 2) throw new Error(`${JSON.stringify(line)} is not in the text exactly once:\n${final}`)
    }
  })

  const closedTabLine = '# typed offline, then the tab was closed: ⌁ ü\n'
  await step('offline-edits-survive-a-closed-tab', async () => {
    // The server goes away; Ada types, closes her tab and opens the link again once the
    // server is back: the lines she typed were kept in her browser (IndexedDB) and reach
    // the room, the other pages and the folder.
    const port = Number(new URL(serverUrl).port)
    serverDown = true
    await stop(serverChild, 'mesh-server')
    await a.waitForSelector('[data-testid=status][data-state=offline]', { timeout: WAIT_MS })
    if (!/kept in this browser/.test(await a.textContent('[data-testid=status]'))) throw new Error('the status does not say edits are kept')
    await a.click('.cm-editor[data-path="main.py"] .cm-content')
    await a.keyboard.press('Control+End')
    // Pasted (one edit, so one stored update holds the whole line and the check below can
    // find its bytes; typed keys are one update each).
    await a.keyboard.insertText(closedTabLine)
    // Kept means written to IndexedDB: look for the line's bytes among the stored updates.
    const roomId = new URL(joinLink).pathname.split('/').pop()
    await until('the offline line in IndexedDB', () => a.evaluate(([name, needle]) => new Promise((resolve) => {
      const open = indexedDB.open(name)
      open.onerror = () => resolve(false)
      open.onsuccess = () => {
        const all = open.result.transaction('updates').objectStore('updates').getAll()
        all.onsuccess = () => {
          const want = new TextEncoder().encode(needle.slice(0, 12))
          const found = all.result.some(u => {
            outer: for (let i = 0; i + want.length <= u.length; i++) {
              for (let j = 0; j < want.length; j++) if (u[i + j] !== want[j]) continue outer
              return true
            }
            return false
          })
          open.result.close()
          resolve(found)
        }
        all.onerror = () => { open.result.close(); resolve(false) }
      }
    }), [`mesh-room:${roomId}`, closedTabLine]))
    const context = a.context()
    await a.close()
    delete pages.ada
    await startServer(port)
    serverDown = false
    const again = await newPage('ada', context)
    await again.goto(joinLink)
    await again.waitForSelector('[data-testid=status][data-state=connected]', { timeout: WAIT_MS })
    await again.click('[data-testid=file-tree] li[data-path="main.py"] button.file', { timeout: WAIT_MS })
    await waitText(again, 'main.py', [closedTabLine], 'the closed tab\'s line in the reopened page')
    await waitText(b, 'main.py', [closedTabLine], 'the closed tab\'s line in page B')
    const final = await until('byte-equal with the folder', async () => {
      const [ta, tb, disk] = [await editorText(again, 'main.py'), await editorText(b, 'main.py'), readFile('main.py')]
      return ta === tb && tb === disk && disk.includes(closedTabLine) ? disk : null
    })
    for (const line of [adaLine, boLine, diskLine, offlineLine, closedTabLine]) {
      if (final.split(line).length !== 2) throw new Error(`${JSON.stringify(line)} is not in the text exactly once:\n${final}`)
    }
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
console.log(`browser e2e: ${passed} passed, ${failedCount} failed`)
process.exit(failedCount ? 1 : 0)
