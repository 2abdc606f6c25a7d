// One shared debug session driven from two real editors at once: VS Code (code-server, the
// page of run.mjs, as Grace) and a real headless Neovim with the plugin's built-in debugger
// and no nvim-dap (nvimPeer.mjs, as Nora), both in Ada's room, debugging a Python file of the
// room in real Docker (debugpy) through their own `mesh-proxy dap`.
//
// Nora sets a breakpoint with <F9> and starts the session with :Mesh debug; VS Code joins
// from the notification it shows and stops on that breakpoint too, with the room's merged
// breakpoint drawn as a ◆ in its gutter (checked on screen, screenshot in the artifacts); a
// step in VS Code moves Neovim's current-line sign; a breakpoint Nora adds while debugging is
// drawn in VS Code and stops VS Code's Continue, after Nora typed the line the program
// reads; the variables agree in both; Nora evaluates and continues to the end, which ends
// the session in both editors, and Ada sees the program's output. Then the other way round:
// VS Code starts a session, Nora joins it late and is shown the stop, and her :Mesh stop only
// takes her out of it.
//
// A browser page (the web client, real Chromium, as Bea) is in the same session: it joins
// from its debug panel, stops on Nora's breakpoint with x = 41, and VS Code's step moves its
// current line, with y = 42 among its variables.
import * as path from 'node:path';
import { appendFileSync } from 'node:fs';

import { NvimPeer } from './nvimPeer.mjs';

/** The file debugged together; the program reads a line on INPUT_LINE. */
export const SHARED_DEBUG_FILE = 'together.py';
export const SHARED_DEBUG_SRC = "x = 41\ny = x + 1\nz = y * 2\nname = input('name? ')\nprint('z is', z, name)\n";
const FIRST_BREAKPOINT = 2;
const SECOND_BREAKPOINT = 5;
/** Where VS Code's own breakpoint goes when it starts the session in the last check. */
const VSCODE_BREAKPOINT = 3;
const NORA = 'Nora';
const BEA = 'Bea';
/** The text of each line of the program (1-based). */
const lineText = (n) => SHARED_DEBUG_SRC.split('\n')[n - 1];

/**
 * Runs the checks. `t` is run.mjs's context: check, until, log, page, runCommand, debugViews,
 * debugToolbarButtons, vscodeDocument, notificationTexts, ada, adaRunOutput, link (Ada's
 * room), server, proxyBin, nvim, plugin, logs, artifacts, adopt, timeouts { sync, debug, join }.
 */
export async function sharedDebugChecks(t) {
  const { until, page } = t;
  let nora;
  /** The browser page (the web client) in the session; its own context (storage). */
  let bea;
  // Each check needs the one before it; a failure does not stop the suites after this one.
  let failed;
  const check = (name, fn) => t.check(name, async () => {
    if (failed !== undefined) throw new Error(`not reached: "${failed}" failed`);
    try {
      await fn();
    } catch (e) {
      failed = name;
      throw e;
    }
  }, { critical: false });
  /** Neovim's view of debugging together.py (see nvimPeer.mjs). */
  const noraState = () => nora.debugState(SHARED_DEBUG_FILE);
  const describe = async () => {
    const s = await noraState().catch((e) => ({ error: e.message }));
    return `Neovim shows ${JSON.stringify({ ...s, status: undefined })}; its messages: ${JSON.stringify(await nora.messages().catch(() => []))}`;
  };

  /** The lines of the editor showing together.py that carry the shared ◆ in VS Code's gutter, as drawn. */
  const vscodeDiamonds = () => page.evaluate((marker) => {
    // Monaco draws spaces as no-break spaces.
    const text = (el) => (el?.textContent ?? '').replace(/\u00a0/g, ' ');
    const editor = [...document.querySelectorAll('.editor-instance .monaco-editor')].find((e) => text(e.querySelector('.view-lines')).includes(marker));
    if (!editor) return null;
    const numbers = [...editor.querySelectorAll('.margin-view-overlays .line-numbers')].map((el) => {
      const r = el.getBoundingClientRect();
      return { line: Number(el.textContent.trim()), top: r.top, bottom: r.bottom };
    });
    const lines = new Set();
    for (const el of editor.querySelectorAll('.glyph-margin-widgets *, .margin-view-overlays *')) {
      const bg = getComputedStyle(el).backgroundImage;
      if (!bg || !bg.includes('data:image/svg+xml')) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      const mid = (r.top + r.bottom) / 2;
      const hit = numbers.find((n) => mid >= n.top && mid < n.bottom);
      if (hit) lines.add(hit.line);
    }
    return [...lines].sort((a, b) => a - b);
  }, 'z = y * 2');

  /** Opens together.py in VS Code (quick open), as a person would. */
  const openInVscode = async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget input').fill(SHARED_DEBUG_FILE);
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: SHARED_DEBUG_FILE }).first().waitFor({ timeout: 15_000 });
    await page.keyboard.press('Enter');
    await page.locator('.tab.active', { hasText: SHARED_DEBUG_FILE }).first().waitFor({ timeout: 10_000 });
  };

  /** VS Code paused on `line` of together.py, with `want` (name → value) among its variables. */
  const vscodePausedAt = async (line, want) => {
    let views;
    await until(`VS Code paused on ${SHARED_DEBUG_FILE}:${line} with ${JSON.stringify(want)}`, async () => {
      views = await t.debugViews();
      const top = views.frames[0];
      return (await t.debugToolbarButtons()).includes('debug-continue')
        && top?.file === SHARED_DEBUG_FILE && top.line.startsWith(`${line}:`)
        && Object.entries(want).every(([k, v]) => views.variables.some((x) => x.name === k && x.value === v));
    }, t.timeouts.debug, 250).catch(async (e) => {
      const notes = await t.notificationTexts();
      throw new Error(`${e.message}; the views show ${JSON.stringify(views)}${notes.length ? `; VS Code shows: ${notes.join(' | ')}` : ''}`);
    });
    return views;
  };

  /** The browser's current line on `line` of together.py and `want` (name → value) among its variables. */
  const beaPausedAt = async (line, want) => {
    // The time is logged. (It once read ~30 s: the check took the carets of Grace and Nora,
    // drawn inside the line with their names, for part of the line's text until their
    // cursors went quiet; the page had drawn the stop within a second.)
    const started = Date.now();
    await beaUntil(line, want);
    t.log(`the browser showed line ${line} with ${JSON.stringify(want)} after ${Date.now() - started} ms`);
  };
  const beaUntil = (line, want) => until(`the browser's current line on ${SHARED_DEBUG_FILE}:${line} with ${JSON.stringify(want)}`, async () => bea.evaluate(([p, text, w]) => {
    // The line's own text: the other people's carets (with their names) are drawn inside it.
    const lineEl = document.querySelector(`.cm-editor[data-path="${p}"] .cm-line.cm-debug-current`);
    const bare = lineEl?.cloneNode(true);
    bare?.querySelectorAll('.cm-mesh-caret').forEach((c) => c.remove());
    const current = bare?.textContent;
    const value = (name) => document.querySelector(`[data-testid=debug-variables] .var-row[data-name="${name}"]`)?.textContent ?? '';
    return current === text && Object.entries(w).every(([k, v]) => value(k).includes(v));
  }, [SHARED_DEBUG_FILE, lineText(line), want]), t.timeouts.debug, 250).catch(async (e) => {
    throw new Error(`${e.message}; the browser shows ${JSON.stringify(await beaSeen())}`);
  });
  const beaSeen = () => bea.evaluate((p) => ({
    current: document.querySelector(`.cm-editor[data-path="${p}"] .cm-line.cm-debug-current`)?.textContent ?? null,
    status: document.querySelector('[data-testid=debug-status]')?.textContent ?? null,
    variables: [...document.querySelectorAll('[data-testid=debug-variables] .var-row')].map((r) => r.textContent),
  }), SHARED_DEBUG_FILE).catch((err) => ({ error: err.message }));

  /** Neovim's current-line sign on `line` and `want` (strings) in its debugger window. */
  const noraPausedAt = (line, want = []) => until(`Neovim's current-line sign on ${SHARED_DEBUG_FILE}:${line} and ${JSON.stringify(want)} in its window`, async () => {
    const s = await noraState();
    return s.current?.file === SHARED_DEBUG_FILE && s.current.line === line && want.every((w) => s.window.some((l) => l.includes(w)));
  }, t.timeouts.debug, 250).catch(async (e) => {
    throw new Error(`${e.message}; ${await describe()}`);
  });

  await check('Neovim (Nora: the plugin, no nvim-dap) joins Ada\'s room with :Mesh join', async () => {
    nora = await NvimPeer.start({
      nvim: t.nvim, plugin: t.plugin, server: t.server, proxy: t.proxyBin, name: NORA, logDir: t.logs,
      onSpawn: (child) => t.adopt('nora-nvim', child),
    });
    await nora.command(`Mesh join ${t.link}`);
    await until(`${SHARED_DEBUG_FILE} in Nora's folder`, async () => (await nora.expr(`vim.fn.filereadable(${JSON.stringify(path.join(nora.workDir, SHARED_DEBUG_FILE))})`)) === 1, t.timeouts.join, 200).catch(async (e) => {
      throw new Error(`${e.message}; ${await describe()}`);
    });
    await nora.command(`edit ${SHARED_DEBUG_FILE}`);
    const s = await noraState();
    if (s.nvim_dap !== false) throw new Error('nvim-dap is loadable in this Neovim; the built-in debugger would not be the one tested');
  });

  await check('the browser (Bea: the web client in Chromium) joins Ada\'s room with her link and opens the file and its debug panel', async () => {
    const context = await page.context().browser().newContext({ viewport: { width: 1280, height: 760 } });
    bea = await context.newPage();
    bea.on('console', (m) => appendFileSync(path.join(t.logs, 'bea-console.log'), `${new Date().toISOString()} ${m.type()} ${m.text()}\n`));
    await bea.goto(t.link);
    await bea.fill('[data-testid=name-gate] input', BEA);
    await bea.click('[data-testid=name-gate] button[type=submit]');
    await bea.waitForSelector('[data-testid=status][data-state=connected]', { timeout: t.timeouts.join });
    await bea.click(`[data-testid=file-tree] li[data-path="${SHARED_DEBUG_FILE}"] button.file`, { timeout: t.timeouts.sync });
    await bea.waitForSelector(`.cm-editor[data-path="${SHARED_DEBUG_FILE}"]`, { timeout: t.timeouts.sync });
    await bea.click('[data-testid=dock-tab-debug]');
  });

  await check(`Nora's <F9> on line ${FIRST_BREAKPOINT} and :Mesh debug stop the program there in Neovim (built-in debugger, real Docker)`, async () => {
    await nora.keys(`${FIRST_BREAKPOINT}G<F9>`);
    await until('Nora\'s own breakpoint sign', async () => JSON.stringify((await noraState()).own) === JSON.stringify([FIRST_BREAKPOINT]), t.timeouts.sync, 100).catch(async (e) => {
      throw new Error(`${e.message}; ${await describe()}`);
    });
    const started = Date.now();
    await nora.command('Mesh debug');
    await noraPausedAt(FIRST_BREAKPOINT, ['x = 41', `breakpoint at ${SHARED_DEBUG_FILE}:${FIRST_BREAKPOINT}`, 'Stack']);
    t.log(`Neovim: :Mesh debug to the stop drawn with its variables: ${Date.now() - started} ms (polled every 250 ms)`);
  });

  await check('VS Code joins from its notification and is paused on Nora\'s breakpoint, with x = 41; the shared ◆ is in its gutter', async () => {
    const toast = page.locator('.notification-list-item', { hasText: `${NORA} started debugging` }).first();
    await toast.waitFor({ timeout: t.timeouts.sync }).catch(async (e) => {
      throw new Error(`${e.message}; VS Code shows: ${(await t.notificationTexts()).join(' | ')}`);
    });
    await toast.getByRole('button', { name: 'Join' }).click();
    await t.runCommand('View: Show Run and Debug');
    await vscodePausedAt(FIRST_BREAKPOINT, { x: '41' });
    await openInVscode();
    await until(`the ◆ on line ${FIRST_BREAKPOINT} in VS Code's gutter`, async () => JSON.stringify(await vscodeDiamonds()) === JSON.stringify([FIRST_BREAKPOINT]), t.timeouts.sync, 250).catch(async (e) => {
      throw new Error(`${e.message}; drawn on ${JSON.stringify(await vscodeDiamonds())}`);
    });
    // And Neovim shows the room's merged set too, under its own ●.
    const s = await noraState();
    if (!s.shared.includes(FIRST_BREAKPOINT)) throw new Error(`Neovim has no shared mark on line ${FIRST_BREAKPOINT}: ${JSON.stringify(s.shared)}`);
  });

  await check(`the browser joins from its debug panel and is stopped on Nora's breakpoint (line ${FIRST_BREAKPOINT}) too, with x = 41`, async () => {
    await bea.waitForSelector('[data-testid=debug-join]:visible', { timeout: t.timeouts.sync });
    await bea.click('[data-testid=debug-join]');
    await beaPausedAt(FIRST_BREAKPOINT, { x: '41' });
    await bea.screenshot({ path: path.join(t.artifacts, 'browser-shared-debug.png') });
  });

  await check('a step in VS Code moves Neovim\'s current-line sign and the browser\'s current line; y = 42 is seen in all three', async () => {
    await t.runCommand('Debug: Step Over');
    await vscodePausedAt(FIRST_BREAKPOINT + 1, { x: '41', y: '42' });
    await noraPausedAt(FIRST_BREAKPOINT + 1, ['y = 42  (int)', 'x = 41  (int)']);
    await beaPausedAt(FIRST_BREAKPOINT + 1, { x: '41', y: '42' });
  });

  await check(`a breakpoint Nora adds on line ${SECOND_BREAKPOINT} is drawn in VS Code; VS Code's Continue waits for input, Nora types it, and both stop there`, async () => {
    await nora.keys(`${SECOND_BREAKPOINT}G`);
    await nora.command('Mesh break');
    await until(`the ◆ on lines ${FIRST_BREAKPOINT} and ${SECOND_BREAKPOINT} in VS Code's gutter`, async () => JSON.stringify(await vscodeDiamonds()) === JSON.stringify([FIRST_BREAKPOINT, SECOND_BREAKPOINT]), t.timeouts.sync, 250).catch(async (e) => {
      throw new Error(`${e.message}; drawn on ${JSON.stringify(await vscodeDiamonds())}`);
    });
    await page.screenshot({ path: path.join(t.artifacts, 'vscode-shared-debug.png') });
    t.log(`screenshot: ${path.join(t.artifacts, 'vscode-shared-debug.png')}`);
    await t.runCommand('Debug: Continue');
    // Line 4 reads stdin: the program runs until a line arrives.
    await until('VS Code running (no Continue button)', async () => !(await t.debugToolbarButtons()).includes('debug-continue'), t.timeouts.sync, 100);
    await nora.command('Mesh input Grace');
    await vscodePausedAt(SECOND_BREAKPOINT, { name: "'Grace'", z: '84' });
    await noraPausedAt(SECOND_BREAKPOINT, ["name = 'Grace'", 'z = 84']);
  });

  await check('Nora evaluates in the stopped frame, then continues: the session ends in both editors; Ada saw the output', async () => {
    await nora.command('Mesh eval z + 1');
    await until('the answer among Nora\'s messages', async () => (await nora.messages()).includes('mesh: z + 1 = 85'), t.timeouts.sync, 100).catch(async (e) => {
      throw new Error(`${e.message}; ${await describe()}`);
    });
    await nora.command('Mesh continue');
    await until('the end in Neovim (no current line, "■ ended (exit 0)")', async () => {
      const s = await noraState();
      return !s.active && s.current === null && s.window[0] === '■ ended (exit 0)';
    }, t.timeouts.debug, 250).catch(async (e) => {
      throw new Error(`${e.message}; ${await describe()}`);
    });
    await until('the end in VS Code', async () => (await t.vscodeDocument()).debugSession === null, t.timeouts.debug, 500);
    const started = t.ada.notifications('mesh/runStarted').map((n) => n.params).find((p) => p?.path === SHARED_DEBUG_FILE);
    if (started?.byName !== NORA) throw new Error(`Ada's mesh/runStarted for ${SHARED_DEBUG_FILE}: ${JSON.stringify(started)}`);
    await t.ada.waitFor('the program\'s output in Ada\'s mesh/runOutput', () => t.adaRunOutput(started.runId).includes('z is 84 Grace')).catch((e) => {
      throw new Error(`${e.message}; Ada has ${JSON.stringify(t.adaRunOutput(started.runId))}`);
    });
    // Back to the editor: later checks open the command palette from there.
    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
  });

  await check(`the other way round: VS Code starts a session; Nora is told, joins with :Mesh debug from an empty window and is shown the stop on line ${VSCODE_BREAKPOINT}; her :Mesh stop only leaves it`, async () => {
    await openInVscode();
    await page.locator('.editor-instance .monaco-editor .view-lines', { hasText: 'input' }).first().click();
    await page.keyboard.press('Control+Home');
    for (let i = 1; i < VSCODE_BREAKPOINT; i++) await page.keyboard.press('ArrowDown');
    await t.runCommand('Debug: Toggle Breakpoint');
    const before = (await nora.messages()).length;
    await t.runCommand('Mesh: Debug');
    await vscodePausedAt(VSCODE_BREAKPOINT, { y: '42' });
    await until('Grace\'s session announced in Neovim', async () => (await nora.messages()).slice(before).includes(`mesh: Grace started debugging ${SHARED_DEBUG_FILE}; :Mesh debug to join`), t.timeouts.sync, 100).catch(async (e) => {
      throw new Error(`${e.message}; ${await describe()}`);
    });
    // From a window without a file: :Mesh debug joins the session going (DAP attach).
    await nora.command('enew');
    await nora.command('Mesh debug');
    await noraPausedAt(VSCODE_BREAKPOINT, ['y = 42  (int)']);
    await nora.command('Mesh stop');
    await until('Nora out of the session', async () => !(await noraState()).active, t.timeouts.sync, 100).catch(async (e) => {
      throw new Error(`${e.message}; ${await describe()}`);
    });
    // The session goes on for VS Code, which started it.
    await vscodePausedAt(VSCODE_BREAKPOINT, { y: '42' });
    await t.runCommand('Debug: Continue');
    // Nora types the line the program waits for, as a run input now that she left.
    await until('VS Code running (no Continue button)', async () => !(await t.debugToolbarButtons()).includes('debug-continue'), t.timeouts.sync, 100);
    await nora.command('Mesh input Bea');
    await until('the end in VS Code', async () => (await t.vscodeDocument()).debugSession === null, t.timeouts.debug, 500);
    const runs = t.ada.notifications('mesh/runStarted').map((n) => n.params).filter((p) => p?.path === SHARED_DEBUG_FILE);
    const last = runs[runs.length - 1];
    if (last?.byName !== 'Grace') throw new Error(`Ada's last mesh/runStarted for ${SHARED_DEBUG_FILE}: ${JSON.stringify(last)}`);
    await t.ada.waitFor('the program\'s output in Ada\'s mesh/runOutput', () => t.adaRunOutput(last.runId).includes('z is 84 Bea')).catch((e) => {
      throw new Error(`${e.message}; Ada has ${JSON.stringify(t.adaRunOutput(last.runId))}`);
    });
    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
  });

  // After a failure, the session Nora started would hold VS Code's debugger for the
  // checks that follow: Nora ends it (she started it, so it ends for everyone).
  if (failed !== undefined && nora !== undefined) {
    await nora.command('Mesh stop').catch(() => {});
    await until('the leftover session to end in VS Code', async () => (await t.vscodeDocument()).debugSession === null, t.timeouts.sync, 500).catch(() => {});
  }
  await nora?.stop();
  await bea?.context().close();
}
