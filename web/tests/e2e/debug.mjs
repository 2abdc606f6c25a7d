// The debug panel's end-to-end steps (called by tests/e2e.mjs with its context): a Python
// program under debugpy in the server's container, debugged together by page A (starts it),
// page B (joins it, steps), the reader page (inspects only) and an editor peer, a real
// `mesh-proxy dap` driven over stdio (dap-peer.mjs). Every wait is for a condition.

import { join } from 'node:path'
import * as Y from 'yjs'
import { DapPeer } from './dap-peer.mjs'

/** The program: no stdin (the starter's `input()` would wait while debugged). */
const PROGRAM = [
  'def greet(name):',
  '    message = "Hello, " + name',
  '    return message',
  '',
  '',
  'def main():',
  '    people = {"ada": [1, 2, 3], "bo": {"age": 7}}',
  '    total = 0', // 8: page A's breakpoint
  '    for name in people:', // 9: where B's step lands
  '        total += len(name)', // 10: the editor peer's breakpoint
  '    print(greet("mesh"), total)',
  '    return total',
  '',
  '',
  'main()',
  '',
].join('\n')
const PATH = 'debugme.py'
const A_LINE = 8
const STEP_LINE = 9
const PEER_LINE = 10
const lineText = (n) => PROGRAM.split('\n')[n - 1]

export async function debugSteps (ctx) {
  const { a, b, r, peer, folder, tmp, PROXY_BIN, WAIT_MS, step, until, log, waitText, readFile, cleanups, serverUrl } = ctx

  /** The line highlighted as the program's current line in `page`'s editor of `path`. */
  const waitCurrent = (page, want, what) =>
    page.waitForFunction(([p, t]) => document.querySelector(`.cm-editor[data-path="${p}"] .cm-line.cm-debug-current`)?.textContent === t,
      [PATH, want], { timeout: WAIT_MS }).catch(e => { throw new Error(`${what}: ${e.message}`) })

  /** The gutter's marks in `page`'s editor of the program, by line: own (●) and others' (◆). */
  const marks = (page) => page.evaluate((p) => {
    const ed = document.querySelector(`.cm-editor[data-path="${p}"]`)
    if (!ed) return null
    const tops = [...ed.querySelectorAll('.cm-content .cm-line')].map(l => l.getBoundingClientRect().top)
    const lineOf = (el) => {
      const top = el.closest('.cm-gutterElement').getBoundingClientRect().top
      let best = 0
      tops.forEach((t, i) => { if (Math.abs(t - top) < Math.abs(tops[best] - top)) best = i })
      return best + 1
    }
    return {
      own: [...ed.querySelectorAll('.cm-bp-own')].map(lineOf).sort((x, y) => x - y),
      others: [...ed.querySelectorAll('.cm-bp-others')].map(lineOf).sort((x, y) => x - y),
    }
  }, PATH)
  const waitMarks = async (page, want, what) => {
    try {
      await until(`${what}: marks ${JSON.stringify(want)}`, async () => JSON.stringify(await marks(page)) === JSON.stringify(want))
    } catch (e) {
      throw new Error(`${e.message}; the page shows ${JSON.stringify(await marks(page))}`)
    }
  }

  const clickGutter = async (page, line) => {
    const where = () => page.evaluate(([p, n]) => {
      const ed = document.querySelector(`.cm-editor[data-path="${p}"]`)
      const l = ed.querySelectorAll('.cm-content .cm-line')[n - 1].getBoundingClientRect()
      const g = ed.querySelector('.cm-breakpoint-gutter').getBoundingClientRect()
      return { x: g.left + g.width / 2, y: l.top + l.height / 2 }
    }, [PATH, line])
    // A file just opened may still move (tabs, a toast, the gutter's width): click once the
    // line has stood still for 100 ms, or the click lands on another line.
    let at = await where()
    for (let i = 0; i < 20; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      const now = await where()
      if (now.x === at.x && now.y === at.y) break
      at = now
    }
    await page.mouse.click(at.x, at.y)
  }

  const debugTab = (page) => page.click('[data-testid=dock-tab-debug]')
  const topFrame = (page) => page.waitForSelector(`[data-testid=debug-stack] li:first-child .frame[data-path="${PATH}"]`, { timeout: WAIT_MS })
    .then(el => el.getAttribute('data-line'))

  let editor
  let stopMark = 0
  const peerPath = join(folder, PATH)

  await step('debug-breakpoint-in-the-gutter', async () => {
    // The program comes into the room from a Yjs peer, like any file another client adds.
    const text = new Y.Text()
    text.insert(0, PROGRAM)
    peer.doc.getMap('files').set(PATH, text)
    await a.click(`[data-testid=file-tree] li[data-path="${PATH}"] button.file`, { timeout: WAIT_MS })
    await waitText(a, PATH, ['def main'], 'the program in page A')
    await clickGutter(a, A_LINE)
    await waitMarks(a, { own: [A_LINE], others: [] }, 'page A\'s own breakpoint')
    // F9 toggles one at the caret, both ways.
    await a.click('.cm-editor[data-path="debugme.py"] .cm-content')
    await a.keyboard.press('Control+Home')
    await a.keyboard.press('ArrowDown')
    await a.keyboard.press('F9')
    await waitMarks(a, { own: [2, A_LINE], others: [] }, 'F9 sets a breakpoint at the caret')
    await a.keyboard.press('F9')
    await waitMarks(a, { own: [A_LINE], others: [] }, 'F9 again removes it')
    // The debugger's keys are in the shortcuts help.
    await a.keyboard.press('F1')
    for (const label of ['Debug: start, join, or continue', 'Debug: step over', 'Debug: step into', 'Debug: step out', 'Debug: stop (or leave)', 'Debug: toggle a breakpoint at the caret']) {
      await a.waitForSelector(`[data-testid=shortcuts-help] td:text-is("${label}")`, { timeout: WAIT_MS })
    }
    await a.keyboard.press('Escape')
    await a.waitForSelector('[data-testid=shortcuts-help]', { state: 'hidden', timeout: WAIT_MS })
    // Before a session, a breakpoint is the page's own: nobody else sees it yet.
    await b.click(`[data-testid=file-tree] li[data-path="${PATH}"] button.file`, { timeout: WAIT_MS })
    await waitMarks(b, { own: [], others: [] }, 'page B before the session')
    await debugTab(a)
    await debugTab(b)
  })

  await step('debug-start-stops-everywhere', async () => {
    // Page A starts on the file in front with F5; B is offered the session and joins.
    await a.keyboard.press('F5')
    await b.waitForSelector('[data-testid=debug-join]:visible', { timeout: WAIT_MS })
    await b.click('[data-testid=debug-join]')
    for (const [label, page] of [['A', a], ['B', b]]) {
      await waitCurrent(page, lineText(A_LINE), `page ${label} stops at the breakpoint`)
      const line = await topFrame(page)
      if (Number(line) !== A_LINE) throw new Error(`page ${label}'s top frame is at line ${line}`)
      await page.waitForSelector('[data-testid=debug-status][data-state=stopped]', { timeout: WAIT_MS })
    }
    // The editor peer: launched as VS Code and nvim-dap launch it, on the file in its folder.
    await until('the program in the proxy\'s folder', () => readFile(PATH) === PROGRAM)
    const state = join(tmp, 'proxy-state')
    editor = new DapPeer(PROXY_BIN, folder, { ...process.env, MESH_SERVER: serverUrl, MESH_NAME: 'Editor', XDG_STATE_HOME: state, XDG_CONFIG_HOME: state }, log)
    cleanups.unshift(() => editor.close())
    const init = await editor.request('initialize', { clientID: 'e2e', adapterID: 'mesh', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' })
    if (!init.body?.supportsConfigurationDoneRequest) throw new Error(`odd initialize answer: ${JSON.stringify(init)}`)
    await editor.request('launch', { program: peerPath, language: 'python' })
    await editor.event('initialized')
    await editor.request('configurationDone')
    const stopped = await editor.event('stopped')
    stopMark = editor.mark()
    const stack = await editor.request('stackTrace', { threadId: stopped.body.threadId, startFrame: 0, levels: 20 })
    const top = stack.body.stackFrames[0]
    if (top.name !== 'main' || top.line !== A_LINE || top.source?.path !== peerPath) {
      throw new Error(`the editor peer's stack differs: ${JSON.stringify(top)}`)
    }
    // The same stack in the pages: the same function on top.
    for (const page of [a, b]) await page.waitForSelector('[data-testid=debug-stack] li:first-child .frame-name:text-is("main")', { timeout: WAIT_MS })
  })

  await step('debug-editor-breakpoint-in-both-gutters', async () => {
    const res = await editor.request('setBreakpoints', { source: { path: peerPath }, breakpoints: [{ line: PEER_LINE }] })
    if (!res.body.breakpoints[0]?.verified) throw new Error(`the editor's breakpoint is not verified: ${JSON.stringify(res.body)}`)
    await waitMarks(a, { own: [A_LINE], others: [PEER_LINE] }, 'page A shows the editor\'s breakpoint')
    await waitMarks(b, { own: [], others: [A_LINE, PEER_LINE] }, 'page B shows everyone\'s breakpoints')
  })

  await step('debug-variables-with-a-child', async () => {
    for (const page of [a, b]) {
      const people = page.locator('[data-testid=debug-variables] .var-row[data-name="people"]')
      await people.waitFor({ timeout: WAIT_MS })
      await people.locator('> .var-toggle').click()
      await people.locator('.debug-var-list .var-row', { hasText: 'ada' }).waitFor({ timeout: WAIT_MS })
      await people.locator('.debug-var-list .var-row', { hasText: 'bo' }).first().waitFor({ timeout: WAIT_MS })
    }
  })

  await step('debug-step-from-b-moves-a', async () => {
    await b.click('.cm-editor[data-path="debugme.py"] .cm-content')
    await b.keyboard.press('F10')
    await waitCurrent(a, lineText(STEP_LINE), 'page A follows B\'s step')
    await waitCurrent(b, lineText(STEP_LINE), 'page B after its step')
    const stepped = await editor.event('stopped', { since: stopMark })
    const stack = await editor.request('stackTrace', { threadId: stepped.body.threadId, startFrame: 0, levels: 20 })
    if (stack.body.stackFrames[0].line !== STEP_LINE) throw new Error(`the editor peer is at line ${stack.body.stackFrames[0].line}`)
    // The child opened before the step opens again: the variables were fetched anew.
    for (const page of [a, b]) {
      await page.locator('[data-testid=debug-variables] .var-row[data-name="total"]').waitFor({ timeout: WAIT_MS })
      await page.locator('[data-testid=debug-variables] .var-row[data-name="people"] .debug-var-list .var-row', { hasText: 'ada' }).waitFor({ timeout: WAIT_MS })
    }
  })

  await step('debug-evaluate', async () => {
    await a.fill('[data-testid=debug-eval-input]', 'total + 40')
    await a.press('[data-testid=debug-eval-input]', 'Enter')
    await a.locator('[data-testid=debug-eval-results] li:first-child .var-value', { hasText: '40' }).waitFor({ timeout: WAIT_MS })
  })

  await step('debug-reader-inspects-only', async () => {
    await debugTab(r)
    await r.click('[data-testid=debug-join]', { timeout: WAIT_MS })
    await waitCurrent(r, lineText(STEP_LINE), 'the reader sees the stop')
    await r.locator('[data-testid=debug-variables] .var-row[data-name="people"]').waitFor({ timeout: WAIT_MS })
    await r.waitForSelector('[data-testid=debug-reason]:visible', { timeout: WAIT_MS })
    for (const id of ['next', 'continue', 'step-in', 'step-out']) {
      if (!(await r.isDisabled(`[data-testid=debug-${id}]`))) throw new Error(`the reader's ${id} button is enabled`)
    }
    if (!(await r.isDisabled('[data-testid=debug-eval-input]'))) throw new Error('the reader can evaluate')
    await r.keyboard.press('F10')
    await r.waitForSelector('[data-testid=notice]:has-text("inspect the program but not control it")', { timeout: WAIT_MS })
    // The others are still where they were.
    await waitCurrent(a, lineText(STEP_LINE), 'page A after the reader\'s F10')
  })

  await step('debug-continue-to-the-end', async () => {
    // The editor peer takes its breakpoint back; page A's is behind the program already.
    await editor.request('setBreakpoints', { source: { path: peerPath }, breakpoints: [] })
    await waitMarks(a, { own: [A_LINE], others: [] }, 'the editor\'s breakpoint leaves page A\'s gutter')
    const since = editor.mark()
    await a.keyboard.press('F5')
    for (const page of [a, b, r]) {
      await page.waitForSelector('[data-testid=debug-panel][data-ended="exit-0"]', { timeout: WAIT_MS })
      const status = await page.textContent('[data-testid=debug-status]')
      if (!/exit code 0/.test(status)) throw new Error(`the end is not shown: ${status}`)
      if (await page.$('.cm-line.cm-debug-current')) throw new Error('a current line is still highlighted')
    }
    await a.locator('[data-testid=debug-output]', { hasText: 'Hello, mesh 5' }).waitFor({ timeout: WAIT_MS })
    const exited = await editor.event('exited', { since })
    if (exited.body.exitCode !== 0) throw new Error(`the editor peer saw exit code ${exited.body.exitCode}`)
    await editor.event('terminated', { since })
    await editor.close()
  })

  await step('debug-auto-join-leave-and-stop', async () => {
    // B joins others' sessions by itself from now on; A starts again (its breakpoint kept).
    await b.check('[data-testid=debug-autojoin]')
    await a.click('.cm-editor[data-path="debugme.py"] .cm-content')
    await a.keyboard.press('F5')
    for (const [label, page] of [['A', a], ['B', b]]) await waitCurrent(page, lineText(A_LINE), `page ${label} stops again`)
    // Shift+F5 in B, who did not start it, leaves: the session goes on, B may join again.
    if (await b.isEnabled('[data-testid=debug-stop]')) throw new Error('B can end a session A started')
    await b.keyboard.press('Shift+F5')
    await b.waitForSelector('[data-testid=debug-join]:visible', { timeout: WAIT_MS })
    await waitCurrent(a, lineText(A_LINE), 'page A after B left')
    // Shift+F5 in A, who started it, ends it for everyone.
    await a.keyboard.press('Shift+F5')
    for (const page of [a, b]) {
      await page.waitForSelector('[data-testid=debug-panel][data-phase=idle][data-ended]', { timeout: WAIT_MS })
      await page.waitForSelector('.cm-line.cm-debug-current', { state: 'detached', timeout: WAIT_MS })
    }
    await b.uncheck('[data-testid=debug-autojoin]')
    // The steps after these expect the room as it was: the starter file alone, in front.
    peer.doc.getMap('files').delete(PATH)
    for (const page of [a, b, r]) {
      await page.waitForSelector(`[data-testid=file-tree] li[data-path="${PATH}"]`, { state: 'detached', timeout: WAIT_MS })
      await page.click('[data-testid=file-tree] li[data-path="main.py"] button.file')
      await page.waitForSelector('.cm-editor[data-path="main.py"]:visible', { timeout: WAIT_MS })
    }
    await until('the program gone from the proxy\'s folder', () => readFile(PATH) === null)
  })
}
