// The run panel's end-to-end steps (called by tests/e2e.mjs with its context): real runs in
// real Docker, watched from two writer pages, a reader page and an editor peer (a real
// `mesh-proxy lsp` driven by tests/e2e/lsp-peer.mjs) in one room.
//
// Every wait is for a condition (text in a terminal, a run's state, a notification); none
// sleeps. The terminal's text is read from what xterm.js draws (`.xterm-rows`), and the
// runs' state from the panel's `meshRuns` (as editors expose `meshEditor`).

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import { LspPeer, peerDirs } from './lsp-peer.mjs'
import { runsOf, waitRun as waitRunIn } from './run-panel.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
/** The server binary, found as tests/e2e.mjs finds it. */
const SERVER_BIN = process.env.MESH_SERVER_BIN ?? join(process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target'), 'debug', 'mesh-server')
const ARTIFACTS = join(ROOT, 'artifacts', 'web')

/** How long a run may take to show something: the first run waits for a container, on a
 * loaded 2-core machine several seconds. */
const RUN_WAIT_MS = 90_000

/** Prints in red (a palette colour, drawn with a class), in 24-bit blue (mapped to the
 * 256-colour cube so no `style` attribute is needed), to stderr, and exits with 2. */
const COLORS_PY = 'import sys\nprint("\\x1b[31mred alert\\x1b[0m plain")\nprint("\\x1b[38;2;0;128;255mtrue blue\\x1b[0m")\nprint("oops on stderr", file=sys.stderr)\nsys.exit(2)\n'

/** Echoes each line in capitals until its input ends. */
const SHOUT_PY = 'import sys\nfor line in sys.stdin:\n    print(line.strip().upper(), flush=True)\nprint("bye")\n'

/** Ticks until stopped. */
const LONG_PY = 'import time\nprint("tick", flush=True)\nwhile True:\n    time.sleep(0.2)\n'

export async function runSteps (ctx) {
  const { a, b, r, peer, serverUrl, joinLink, tmp, PROXY_BIN, WAIT_MS, step, until, cleanups, log } = ctx
  let editor

  const waitRun = (page, want, what, timeout = RUN_WAIT_MS) => waitRunIn(page, want, what, timeout)
  /** Waits until the terminal a page draws holds `needle`. */
  const waitTerminal = (page, needle, what, timeout = RUN_WAIT_MS) =>
    page.waitForFunction((n) => (document.querySelector('[data-testid=run-terminal] .xterm-rows')?.textContent ?? '').includes(n), needle, { timeout })
      .catch(async e => { throw new Error(`${what}: ${e.message}\nterminal: ${JSON.stringify(await terminalText(page))}`) })
  const terminalText = (page) => page.evaluate(() => document.querySelector('[data-testid=run-terminal] .xterm-rows')?.textContent ?? null)
  const statusOf = (page) => page.textContent('[data-testid=run-status]')
  const waitStatus = (page, re, what, timeout = RUN_WAIT_MS) =>
    page.waitForFunction((src) => new RegExp(src).test(document.querySelector('[data-testid=run-status]')?.textContent ?? ''), re.source, { timeout })
      .catch(async e => { throw new Error(`${what}: ${e.message}; status: ${await statusOf(page)}`) })
  /** Opens a file in a page from the tree. */
  const openFile = async (page, path) => {
    await page.click(`[data-testid=file-tree] li[data-path="${path}"] button.file`, { timeout: WAIT_MS })
    await page.waitForSelector(`.cm-editor[data-path="${path}"]`, { timeout: WAIT_MS })
  }
  /** Adds a file to the room through the Yjs peer. */
  const addFile = async (path, text) => {
    const t = new Y.Text()
    t.insert(0, text)
    peer.doc.getMap('files').set(path, t)
    for (const page of [a, b]) await page.waitForSelector(`[data-testid=file-tree] li[data-path="${path}"]`, { timeout: WAIT_MS })
  }

  await step('run-panel-and-an-editor-peer', async () => {
    const { folder, stateDir } = peerDirs(tmp, 'lsp-editor')
    editor = await LspPeer.start({
      proxyBin: PROXY_BIN,
      folder,
      stateDir,
      name: 'Editor',
      server: serverUrl,
      onExit: (code, signal) => { if (code !== 0 && signal !== 'SIGTERM') log(`mesh-proxy lsp exited (${code ?? signal})`) },
    })
    cleanups.push(() => editor.stop())
    const joined = await editor.join(joinLink)
    if (typeof joined?.room !== 'string') throw new Error(`mesh/join answered ${JSON.stringify(joined)}`)
    await a.waitForSelector('[data-testid=people] li:has-text("Editor")', { timeout: WAIT_MS })
    for (const page of [a, b, r]) await page.waitForSelector('[data-testid=run-panel]:visible', { timeout: WAIT_MS })
    // Writers may run; the reader is told why it may not.
    for (const page of [a, b]) {
      if (await page.isDisabled('[data-testid=run-button]')) throw new Error('a writer\'s Run button is disabled')
    }
    if (!(await r.isDisabled('[data-testid=run-button]'))) throw new Error('the reader\'s Run button is enabled')
    const note = await r.textContent('[data-testid=run-reader-note]')
    if (!/read-only/.test(note)) throw new Error(`the reader is not told why: ${note}`)
    // The shortcuts show in the help.
    await a.keyboard.press('F1')
    await a.waitForSelector('[data-testid=shortcuts-help] td:has-text("Run the file in front")', { timeout: WAIT_MS })
    await a.waitForSelector('[data-testid=shortcuts-help] td:has-text("Stop the run shown")', { timeout: WAIT_MS })
    await a.keyboard.press('Escape')
  })

  let starterRun
  await step('run-with-stdin-seen-everywhere', async () => {
    // Ada runs the starter with the shortcut, from the editor: the key runs, it types nothing.
    await openFile(a, 'main.py')
    const before = await ctx.editorText(a, 'main.py')
    await a.click('.cm-editor[data-path="main.py"] .cm-content')
    await a.keyboard.press('Control+Enter')
    starterRun = await waitRun(a, { path: 'main.py', mine: true, byName: 'you' }, 'Ada\'s run in her page')
    if (await ctx.editorText(a, 'main.py') !== before) throw new Error('Ctrl+Enter typed into the editor')
    // Everyone sees it as it happens, with who started it.
    for (const page of [b, r]) await waitRun(page, { id: starterRun.id, byName: 'Ada' }, 'Ada\'s run in another page')
    await until('mesh/runStarted at the editor peer', () => editor.received('mesh/runStarted', p => p.runId === starterRun.id && p.byName === 'Ada').length)
    for (const page of [a, b, r]) await waitTerminal(page, 'Your name?', 'the prompt')
    // Bo types the name into Ada's run; the reader cannot type at all.
    if (!(await r.isDisabled('[data-testid=run-stdin]'))) throw new Error('the reader may type into a run')
    await b.fill('[data-testid=run-stdin]', 'Zoë')
    await b.press('[data-testid=run-stdin]', 'Enter')
    for (const page of [a, b, r]) {
      await waitTerminal(page, 'Hello, Zoë!', 'the greeting')
      await waitStatus(page, /^exit 0 · \d+\.\d+ s$/, 'the exit code and duration')
    }
    await until('the greeting in mesh/runOutput at the editor peer', () =>
      editor.received('mesh/runOutput', p => p.runId === starterRun.id).map(p => p.data).join('').includes('Hello, Zoë!'))
    await until('mesh/runExited at the editor peer', () => editor.received('mesh/runExited', p => p.runId === starterRun.id && p.code === 0).length)
  })

  await step('run-from-the-editor-with-colours', async () => {
    await addFile('colors.py', COLORS_PY)
    // The proxy has the file once it is on its disk; then the editor runs it.
    await until('colors.py at the editor peer', async () => {
      try { return readFileSync(join(editor.folder, 'colors.py'), 'utf8') === COLORS_PY } catch { return false }
    })
    const started = await editor.request('mesh/run', { path: 'colors.py' })
    if (typeof started?.runId !== 'string') throw new Error(`mesh/run answered ${JSON.stringify(started)}`)
    for (const page of [a, b, r]) {
      await waitRun(page, { id: started.runId, byName: 'Editor', path: 'colors.py' }, 'the editor\'s run in a page')
      await waitTerminal(page, 'oops on stderr', 'the run\'s output')
      await waitStatus(page, /^exit 2 · /, 'exit 2')
      // ANSI red drawn as red: xterm's palette class on the very text.
      const red = await page.evaluate(() => [...document.querySelectorAll('[data-testid=run-terminal] .xterm-rows span.xterm-fg-1')].map(s => s.textContent).join(''))
      if (!red.includes('red alert')) throw new Error(`"red alert" is not drawn in red: ${JSON.stringify(red)}`)
      const blue = await page.evaluate(() => [...document.querySelectorAll('[data-testid=run-terminal] .xterm-rows span')].filter(s => s.textContent.includes('true blue')).map(s => s.className).join(' '))
      if (!/xterm-fg-\d+/.test(blue)) throw new Error(`the 24-bit colour is not drawn from the palette: ${blue}`)
      const plain = await page.evaluate(() => [...document.querySelectorAll('[data-testid=run-terminal] .xterm-rows span')].filter(s => s.textContent.includes('plain')).map(s => s.className).join(' '))
      if (/xterm-fg-1\b/.test(plain)) throw new Error('the colour did not end at the reset')
    }
  })

  await step('typing-into-the-terminal', async () => {
    // The program has a pipe, not a terminal: the page edits the line (Backspace), sends it
    // on Enter, and Ctrl+D closes the program's input.
    await addFile('shout.py', SHOUT_PY)
    await openFile(a, 'shout.py')
    await a.click('[data-testid=run-button]')
    const run = await waitRun(a, { path: 'shout.py', mine: true, state: 'running' }, 'the shout run')
    await waitRun(b, { id: run.id, state: 'running' }, 'the shout run in page B')
    await a.click('[data-testid=run-terminal] .xterm')
    await a.keyboard.type('héllo wörldx', { delay: ctx.KEY_DELAY_MS })
    await a.keyboard.press('Backspace')
    // A run someone else starts meanwhile is listed, but does not take the view from Ada
    // while she types: her Enter goes to her program.
    const other = await editor.request('mesh/run', { path: 'colors.py' })
    await waitRun(a, { id: other.runId, byName: 'Editor' }, 'the editor\'s run in page A')
    await waitRun(b, { id: other.runId, byName: 'Editor' }, 'the editor\'s run in page B')
    const title = await a.textContent('[data-testid=run-title]')
    if (!title.startsWith('shout.py')) throw new Error(`another run took the view while Ada typed: ${title}`)
    await a.keyboard.press('Enter')
    await b.click(`[data-testid=run-list] li[data-run-id="${run.id}"] button`)
    for (const page of [a, b]) await waitTerminal(page, 'HÉLLO WÖRLD', 'the line in capitals')
    if ((await terminalText(b)).includes('WÖRLDX')) throw new Error('Backspace did not take the x back')
    await a.keyboard.press('Control+d')
    for (const page of [a, b]) {
      await waitTerminal(page, 'bye', 'the end of input')
      await waitStatus(page, /^exit 0 · /, 'the exit after Ctrl+D')
    }
  })

  await step('queue-and-stop', async () => {
    await addFile('long.py', LONG_PY)
    await openFile(a, 'long.py')
    await a.click('[data-testid=run-button]')
    const first = await waitRun(a, { path: 'long.py', mine: true, state: 'running' }, 'the long run')
    for (const page of [a, b]) await waitTerminal(page, 'tick', 'the long run\'s first line')
    // A second run of Ada's waits: one run at a time per person (max_runs_per_person).
    await a.click('[data-testid=run-button]')
    const second = await waitRun(a, { path: 'long.py', mine: true, state: 'queued' }, 'the queued run', WAIT_MS)
    for (const page of [a, b]) {
      await waitRun(page, { id: second.id, state: 'queued' }, 'the queued run in every page', WAIT_MS)
      await waitStatus(page, /^queued: 1st in line, waiting for the other run of whoever asked to end \(max_runs_per_person\)$/, 'the queue place', WAIT_MS)
    }
    // Only who started a run (or the host) may stop it: Bo may not.
    await b.click(`[data-testid=run-list] li[data-run-id="${first.id}"] button`)
    if (!(await b.isDisabled('[data-testid=stop-button]'))) throw new Error('Bo may stop Ada\'s run')
    // Ada stops the first with the shortcut; the second starts and she stops it with the button.
    await a.click(`[data-testid=run-list] li[data-run-id="${first.id}"] button`)
    await a.keyboard.press('Control+Shift+Enter')
    for (const page of [a, b, r]) {
      await waitRun(page, { id: first.id, state: 'exited' }, 'the stopped run')
      // Each page shows the newest run (the second) unless told otherwise.
      await page.click(`[data-testid=run-list] li[data-run-id="${first.id}"] button`)
      await waitStatus(page, /^stopped after \d+\.\d+ s$/, 'how the run ended')
      await waitTerminal(page, 'stopped after', 'the end in the terminal')
    }
    await waitRun(a, { id: second.id, state: 'running' }, 'the queued run starting')
    await a.click(`[data-testid=run-list] li[data-run-id="${second.id}"] button`)
    await waitTerminal(a, 'tick', 'the second run\'s first line')
    await a.click('[data-testid=stop-button]')
    await waitRun(b, { id: second.id, state: 'exited' }, 'the second run stopped')
    await until('mesh/runExited (stopped) at the editor peer', () => editor.received('mesh/runExited', p => p.runId === first.id && p.error === 'stopped').length)
  })

  await step('history-after-a-reload', async () => {
    await b.reload()
    await b.waitForSelector('[data-testid=status][data-state=connected]', { timeout: WAIT_MS })
    const past = await waitRun(b, { id: starterRun.id, fromHistory: true }, 'the first run in the history', WAIT_MS)
    if (past.byName !== 'Ada' || past.end?.code !== 0) throw new Error(`the history has it otherwise: ${JSON.stringify(past)}`)
    await b.click(`[data-testid=run-list] li[data-run-id="${starterRun.id}"] button`)
    await waitTerminal(b, 'Hello, Zoë!', 'the first run\'s output from the history', WAIT_MS)
    await waitStatus(b, /^exit 0 · /, 'its exit', WAIT_MS)
    // Every run of this session is there, bounded and newest first.
    const runs = await runsOf(b)
    const paths = runs.map(x => x.path)
    for (const p of ['long.py', 'colors.py', 'main.py']) if (!paths.includes(p)) throw new Error(`${p} is not in the history: ${paths}`)
    if (paths.indexOf('long.py') > paths.indexOf('main.py')) throw new Error(`not newest first: ${paths}`)
    // Leave the room as the steps found it: the later steps type into main.py, which a page
    // opening the room shows first only while it is the first file.
    for (const page of [a, b]) await openFile(page, 'main.py')
    const added = ['colors.py', 'shout.py', 'long.py']
    peer.doc.transact(() => { for (const path of added) peer.doc.getMap('files').delete(path) })
    for (const page of [a, b, r]) {
      for (const path of added) await page.waitForSelector(`[data-testid=file-tree] li[data-path="${path}"]`, { state: 'detached', timeout: WAIT_MS })
    }
  })

  await step('no-docker-offers-this-browser', async () => {
    // A server of its own whose Docker cannot be reached: its runs fail to start, and the
    // panel says so, offering this browser for Python and saying why C cannot go there.
    const child = spawn(SERVER_BIN, ['--listen', '127.0.0.1:0', '--data-dir', join(tmp, 'no-docker-data')], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, MESH_LOG: 'error', MESH_RUN_IMAGES: 'local', DOCKER_HOST: `unix://${join(tmp, 'no-docker.sock')}` },
    })
    cleanups.push(() => ctx.stop(child, 'mesh-server without Docker'))
    const lines = createInterface({ input: child.stdout })
    const [first] = await once(lines, 'line')
    lines.on('line', () => {})
    const url = /^mesh-server listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(first)?.[1]
    if (!url) throw new Error(`unexpected first line from mesh-server: ${first}`)
    // Its own browser context (another origin than the suite's server), with the same checks.
    const context = await a.context().browser().newContext({ viewport: { width: 1280, height: 760 } })
    cleanups.push(() => context.close())
    const page = await context.newPage()
    const problems = []
    page.on('pageerror', e => problems.push(`page error: ${e.message}`))
    page.on('console', m => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`) })
    page.on('request', req => { if (!req.url().startsWith(url) && !req.url().startsWith(url.replace('http', 'ws'))) problems.push(`request to another origin: ${req.url()}`) })

    await page.goto(`${url}/`)
    await page.fill('[data-testid=create] input[name=name]', 'Ada')
    await page.fill('[data-testid=create] input[name=session]', 'no docker')
    await page.selectOption('[data-testid=create] select', 'python')
    await page.click('[data-testid=create] button[type=submit]')
    await ctx.waitText(page, 'main.py', ['Hello'], 'the starter file')
    await page.click('[data-testid=run-button]')
    await waitRun(page, { path: 'main.py', state: 'exited', where: 'server' }, 'the failed run', WAIT_MS)
    await page.waitForSelector('[data-testid=run-unavailable]:has-text("cannot run programs now")', { timeout: WAIT_MS })
    await page.waitForSelector('[data-testid=run-in-browser]', { timeout: WAIT_MS })
    // A language that needs the server is told so.
    await page.click('[data-testid=new-file]')
    await page.fill('[data-testid=path-input]', 'main.c')
    await page.press('[data-testid=path-input]', 'Enter')
    await page.waitForSelector('[data-testid=run-file]:text("main.c")', { timeout: WAIT_MS })
    await page.waitForSelector('[data-testid=run-unavailable]:has-text("needs the server: only JavaScript and Python run in this browser")', { timeout: WAIT_MS })
    if (await page.isVisible('[data-testid=run-in-browser]')) throw new Error('C is offered the browser')
    // Python goes to this browser with one click.
    await openFile(page, 'main.py')
    await page.click('[data-testid=run-in-browser]')
    await waitRun(page, { path: 'main.py', where: 'browser', mine: true }, 'the run in this browser', WAIT_MS)
    if (await page.inputValue('[data-testid=run-where]') !== 'browser') throw new Error('"where" did not switch to this browser')
    await page.screenshot({ path: join(ARTIFACTS, 'run-no-docker.png') })
    if (problems.length) throw new Error(problems.join('; '))
    await context.close()
    await ctx.stop(child, 'mesh-server without Docker')
  })
}
