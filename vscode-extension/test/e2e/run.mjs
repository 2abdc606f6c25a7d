// End-to-end test of the extension in a real VS Code (code-server, driven by Playwright and
// Chromium) against a real mesh-server and mesh-proxy. The other participant, "Ada", is a
// scripted editor (lspPeer.mjs) driving her own `mesh-proxy lsp --stdio` over LSP: she
// shares a folder with main.py (`mesh/share`); VS Code joins with her link through the
// command palette, a person's keystrokes reach her buffer through versioned applyEdits, her
// keystrokes and cursor appear in VS Code, and after concurrent typing VS Code's buffer,
// hers and the room's text (read by a stock Yjs client) are equal byte for byte. Then
// "Mesh: Run" runs a Python file of the room in real Docker: its prompt appears in a VS Code
// terminal, a line typed there reaches the program's stdin, and Ada sees the same output.
// Then "Mesh: Debug" debugs a Python file of the room (debugpy in real Docker, through
// `mesh-proxy dap`): a breakpoint set in VS Code's gutter stops the program on its line, the
// Call Stack and Variables views show the stop and a variable's value, Continue ends the
// session, and the program's output reaches Ada as well. Then one session from two editors at
// once: a real headless Neovim with the plugin's built-in debugger (sharedDebug.mjs) starts
// it, VS Code joins, and breakpoints, steps, stdin and variables are checked in both. Last,
// host control: VS Code shares a room, turns approval on, a second scripted editor ("Bo")
// waits in the lobby until Admit is clicked on VS Code's notification, then VS Code makes him
// a reader and kicks him through "Mesh: Participants and Roles", and his session ends with
// the message. Along the way, "Mesh: Ask Ghost About Selection" asks a real mesh-ghost (on a
// scripted OpenAI-compatible provider this script serves on loopback) about a selected line:
// the model gets the line, and the answer reaches Ada's chat; then a suggestion changes
// nothing until "Mesh: Ghost Suggestions" previews it as a diff and Accept applies it.
//
// Run by scripts/test-vscode, which installs and builds what this needs. Environment:
//   MESH_E2E_CODE_SERVER  code-server's out/node/entry.js                      (required)
//   MESH_E2E_VSIX         the extension package                                (required)
//   MESH_SERVER_BIN       mesh-server binary                                   (required)
//   MESH_PROXY_BIN        mesh-proxy binary, for VS Code and for Ada (default:
//                         target/debug/mesh-proxy in this repository)
//   MESH_E2E_ARTIFACTS    where the screenshot and logs go (default: ./artifacts)
//   MESH_E2E_PIDFILE      a file to append the pid of every process started, so the
//                         calling script can clean up even if this one is killed
//   MESH_E2E_CHROMIUM     the browser (default: /usr/bin/chromium)
//   MESH_GHOST_BIN        mesh-ghost binary (default: beside MESH_SERVER_BIN)
//   MESH_E2E_NVIM         a recent Neovim, for the shared debug session (required;
//                         scripts/install-neovim puts one in .tools/neovim/bin)
// Prints one line per check and a closing "N passed, M failed"; exits 1 on any failure.
import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';

import { LspPeer, positionAt } from './lspPeer.mjs';
import { SHARED_DEBUG_FILE, SHARED_DEBUG_SRC, sharedDebugChecks } from './sharedDebug.mjs';

// --- settings --------------------------------------------------------------------------

/** The whole run; past it everything is torn down and the run fails. */
const OVERALL_TIMEOUT_MS = 480_000;
/** code-server's workbench in a cold browser: measured at about 4 s, with room to spare. */
const WORKBENCH_TIMEOUT_MS = 60_000;
/** One edit or cursor travelling between VS Code and Ada: normally well under a second. */
const SYNC_TIMEOUT_MS = 15_000;
/** Joining: the proxy connects, syncs the room and writes its files. */
const JOIN_TIMEOUT_MS = 30_000;
const ADA = 'Ada';
const FILE = 'main.py';
const INITIAL = "def greet(name):\n    return f'hello {name}'\n\nprint(greet('mesh'))\n";
/** A program that asks for a line: run from VS Code, answered in its terminal. */
const RUN_FILE = 'ask.py';
const ASK = "name = input('name? ')\nprint('hi', name)\n";
/** A run: Docker starts a fresh container, Python runs, the output crosses the server. */
const RUN_TIMEOUT_MS = 60_000;
/** A program debugged from VS Code: a breakpoint on DEBUG_LINE, where `x` is 41. */
const DEBUG_FILE = 'debug.py';
const DEBUG_SRC = "x = 41\ny = x + 1\nprint('y is', y)\n";
const DEBUG_LINE = 2;
/** A debug session: a fresh container, debugpy's adapter, the program up to the breakpoint. */
const DEBUG_TIMEOUT_MS = 90_000;

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') {
    console.error(`e2e: set ${name}`);
    process.exit(2);
  }
  return v;
};
const CODE_SERVER = env('MESH_E2E_CODE_SERVER');
const VSIX = env('MESH_E2E_VSIX');
const SERVER_BIN = env('MESH_SERVER_BIN');
const PROXY_BIN = env('MESH_PROXY_BIN', fileURLToPath(new URL('../../../target/debug/mesh-proxy', import.meta.url)));
if (!existsSync(PROXY_BIN)) {
  console.error(`e2e: no mesh-proxy at ${PROXY_BIN} (cargo build -p mesh-proxy, or set MESH_PROXY_BIN)`);
  process.exit(2);
}
const ARTIFACTS = path.resolve(env('MESH_E2E_ARTIFACTS', 'artifacts'));
const PIDFILE = process.env.MESH_E2E_PIDFILE;
const CHROMIUM = env('MESH_E2E_CHROMIUM', '/usr/bin/chromium');
const NVIM = env('MESH_E2E_NVIM');
const GHOST_BIN = env('MESH_GHOST_BIN', path.join(path.dirname(SERVER_BIN), 'mesh-ghost'));
/** The scripted provider's answer to the ghost's request. */
const GHOST_ANSWER = 'greet returns a greeting for name.';
/** Its answer to the second request: a suggestion (a search/replace block) for main.py. */
const GHOST_MARK = '  # the ghost suggested this';
const GHOST_SUGGESTION = `<<<<<<< SEARCH ${FILE}\ndef greet(name):\n=======\ndef greet(name):${GHOST_MARK}\n>>>>>>> REPLACE\n`;
const PLUGIN = fileURLToPath(new URL('../../../neovim-plugin', import.meta.url));

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const log = (msg) => console.log(`  [${elapsed()}] ${msg}`);

// --- processes -------------------------------------------------------------------------

/** Every child, killed by process group at the end (code-server's children go with it). */
const children = [];

function start(name, cmd, args, opts = {}) {
  const logFile = path.join(LOGS, `${name}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  child.on('error', (e) => out.write(`spawn error: ${e.message}\n`));
  adopt(name, child);
  return child;
}

/** Registers a child started elsewhere (it must lead its own process group) for the kill at the end. */
function adopt(name, child) {
  children.push({ name, child });
  if (PIDFILE && child.pid !== undefined) {
    appendFileSync(PIDFILE, `${child.pid}\n`);
  }
}

async function stopAll() {
  for (const { child } of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
    const exited = await Promise.race([new Promise((r) => child.once('exit', () => r(true))), sleep(5000).then(() => false)]);
    if (!exited) {
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Resolves when `pred` holds, polling; rejects with `what` after `ms`. */
async function until(what, pred, ms = SYNC_TIMEOUT_MS, every = 100) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await pred();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last instanceof Error ? ` (${last.message})` : ''}`);
    await sleep(every);
  }
}

// --- checks ----------------------------------------------------------------------------

const results = [];
let blocked;

/** Runs a check; after a failed critical check the rest are reported as not reached. */
async function check(name, fn, { critical = true } = {}) {
  if (blocked !== undefined) {
    results.push({ name, ok: false, why: `not reached: "${blocked}" failed` });
    console.log(`FAIL ${name} (not reached)`);
    return;
  }
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  } catch (e) {
    results.push({ name, ok: false, why: e instanceof Error ? e.message : String(e) });
    console.log(`FAIL ${name}: ${e instanceof Error ? e.message : String(e)}`);
    const shot = path.join(LOGS, `failure-${results.length}.png`);
    await page?.screenshot({ path: shot }).then(() => console.log(`     screenshot: ${shot}`), () => {});
    if (critical) blocked = name;
  }
}

// --- the run ---------------------------------------------------------------------------

const WORK = mkdtempSync(path.join(tmpdir(), 'mesh-vscode-e2e-'));
const LOGS = path.join(ARTIFACTS, 'vscode-e2e');
rmSync(LOGS, { recursive: true, force: true });
mkdirSync(LOGS, { recursive: true });
const WS = path.join(WORK, 'workspace');
const EXT_OUT = path.join(WORK, 'ext-out');
const UD = path.join(WORK, 'user-data');
const EXT_DIR = path.join(WORK, 'extensions');
for (const d of [WS, EXT_OUT, path.join(UD, 'User'), EXT_DIR]) mkdirSync(d, { recursive: true });

let server; // { url }
let shared; // Ada's mesh/share answer: { room, link, readLink }
/** @type {LspPeer | undefined} */
let ada;
let page;
let browser;

/** Runs a command by its title through the command palette, as a person would. */
async function runCommand(title) {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`>${title}`);
  // The exact title must be the focused row before Enter, or another command would run.
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: title }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.press('Enter');
}

/**
 * Asks the extension (its test hook writes document.json) for the session state and the
 * text of main.py as VS Code holds it: `{ state, text }`, `text` null when it is not open.
 */
async function vscodeDocument() {
  const file = path.join(EXT_OUT, 'document.json');
  const before = existsSync(file) ? statSync(file).mtimeMs : 0;
  await runCommand('Mesh: Write Document Text (test)');
  await until('the extension to write document.json', () => existsSync(file) && statSync(file).mtimeMs > before, 10_000, 50);
  const report = JSON.parse(readFileSync(file, 'utf8'));
  const doc = report.documents.find((d) => d.path === path.join(WS, FILE));
  return { ...report, text: doc?.text ?? null };
}

const adaText = () => ada.text(FILE);

/**
 * Reads a file of a room as a stock Yjs client (yjs + y-websocket) joining with a mesh link
 * sees it: the room's own text, independent of any proxy. Connects, waits for the sync and
 * the file, disconnects.
 */
async function roomText(joinLink, file, ms = SYNC_TIMEOUT_MS) {
  const link = new URL(joinLink);
  const roomId = link.pathname.split('/').pop();
  const wsBase = `${link.protocol === 'https:' ? 'wss' : 'ws'}://${link.host}${link.pathname.slice(0, link.pathname.lastIndexOf('/join/'))}/ws`;
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(wsBase, roomId, doc, { WebSocketPolyfill: WebSocket, params: { token: link.searchParams.get('token') } });
  try {
    const files = doc.getMap('files');
    await until(`${file} in the room (as a Yjs client sees it)`, () => provider.synced && files.get(file) !== undefined, ms, 100);
    return files.get(file).toString();
  } finally {
    provider.destroy();
    doc.destroy();
  }
}

/** Names in Ada's latest mesh/participants notification. */
const adaSees = () => (ada.last('mesh/participants')?.participants ?? []).map((p) => p.name);

/** The extension's status bar item (VS Code gives it the id `<extension id>.<item id>`). */
const statusBarItem = () => page.locator('[id="mesh.mesh-vscode.mesh.status"]');

/** The Mesh status bar item's text. */
async function statusBarText() {
  return (await statusBarItem().textContent({ timeout: 2000 })) ?? '';
}

/** The text of the terminal panel as xterm's DOM renderer draws it ('' when none is shown). */
async function terminalText() {
  const rows = page.locator('.terminal-wrapper.active .xterm-rows');
  if ((await rows.count()) === 0) return '';
  return (await rows.first().innerText()).replace(/\u00a0/g, ' ');
}

/** Text of the notifications VS Code shows (for failure messages). */
const notificationTexts = () => page.locator('.notifications-toasts .notification-list-item-message').allTextContents().catch(() => []);

/** The debug toolbar's buttons that are shown (e.g. ['debug-continue', 'debug-step-over', ...]). */
function debugToolbarButtons() {
  return page.evaluate(() => {
    const bar = document.querySelector('.debug-toolbar');
    if (!bar || bar.getBoundingClientRect().height === 0 || getComputedStyle(bar).display === 'none') return [];
    return [...bar.querySelectorAll('.action-label.codicon')].map((el) => [...el.classList].find((c) => c.startsWith('codicon-debug'))?.slice('codicon-'.length)).filter(Boolean);
  });
}

/** What the Run and Debug view shows: the call stack's state and frames, and the variables (name → value). */
function debugViews() {
  return page.evaluate(() => {
    const text = (el) => (el?.textContent ?? '').replace(/\u00a0/g, ' ').trim();
    const stack = document.querySelector('.debug-call-stack');
    const frames = stack ? [...stack.querySelectorAll('.monaco-list-row .stack-frame')].map((f) => ({
      name: text(f.querySelector('.expression')), file: text(f.querySelector('.file-name')), line: text(f.querySelector('.line-number')),
    })) : [];
    // One session with one thread: the state ("Paused on breakpoint") is in the view's title.
    const states = [...document.querySelectorAll('.call-stack-state-message:not([hidden]) .label, .debug-call-stack .state')].map(text);
    const variables = [...document.querySelectorAll('.debug-variables .monaco-list-row')].map((row) => ({
      name: text(row.querySelector('.name')).replace(/\s*[=:]$/, ''), value: text(row.querySelector('.value')),
    }));
    const topLine = document.querySelectorAll('.monaco-editor .debug-top-stack-frame-line').length > 0;
    return { states, frames, variables, topLine };
  });
}

/** The Debug Console's text. */
function debugConsoleText() {
  return page.evaluate(() => [...document.querySelectorAll('.repl .monaco-list-row')].map((r) => r.textContent ?? '').join('\n'));
}

/** Ada's mesh/runOutput for a run, joined. */
const adaRunOutput = (runId) => ada.notifications('mesh/runOutput').filter((n) => n.params?.runId === runId).map((n) => n.params.data).join('');

/** True when a decoration drawing `name` (CSS generated content or injected text) is in the editor. */
function decorationShown(name) {
  return page.evaluate((n) => {
    for (const el of document.querySelectorAll('.monaco-editor .view-lines span, .monaco-editor .view-lines span *')) {
      for (const pseudo of ['::after', '::before']) {
        const content = getComputedStyle(el, pseudo).content;
        if (content && content !== 'none' && content.includes(n)) return true;
      }
      if (el.children.length === 0 && el.textContent === n) return true;
    }
    return false;
  }, name);
}

async function main() {
  console.log(`mesh VS Code e2e (work dir ${WORK})`);

  await check('mesh-server starts on an ephemeral port', async () => {
    const child = start('mesh-server', SERVER_BIN, ['--listen', '127.0.0.1:0', '--data-dir', path.join(WORK, 'server-data'), '--run-images', 'local']);
    const url = await new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`no "listening" line; see ${LOGS}/mesh-server.log`)), 20_000);
      child.stdout.on('data', (d) => {
        buf += d;
        const m = /mesh-server listening on (http:\/\/\S+)/.exec(buf);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`mesh-server exited with ${code}`)); });
    });
    server = { url };
    log(`mesh-server at ${url}`);
  });

  await check('Ada (a scripted editor on her own mesh-proxy) shares a folder with main.py', async () => {
    ada = await LspPeer.start({
      bin: PROXY_BIN, server: server.url, name: ADA, files: { [FILE]: INITIAL, [RUN_FILE]: ASK, [DEBUG_FILE]: DEBUG_SRC, [SHARED_DEBUG_FILE]: SHARED_DEBUG_SRC }, logDir: LOGS,
      onSpawn: (child) => adopt('ada-mesh-proxy', child),
    });
    shared = await ada.share();
    for (const k of ['room', 'link', 'readLink']) {
      if (typeof shared?.[k] !== 'string' || shared[k] === '') throw new Error(`mesh/share answered ${JSON.stringify(shared)}`);
    }
    ada.open(FILE);
    log(`room ${shared.room}, link ${shared.link}`);
  });

  let port;
  await check('code-server starts with the extension installed from the .vsix', async () => {
    const cs = ['--config', path.join(WORK, 'code-server.yaml'), '--user-data-dir', UD, '--extensions-dir', EXT_DIR];
    writeFileSync(path.join(WORK, 'code-server.yaml'), 'auth: none\ncert: false\n');
    const install = start('code-server-install', process.execPath, [CODE_SERVER, ...cs, '--install-extension', VSIX, '--force']);
    const code = await new Promise((resolve) => install.on('exit', resolve));
    if (code !== 0) throw new Error(`--install-extension exited with ${code}; see ${LOGS}/code-server-install.log`);
    writeFileSync(
      path.join(UD, 'User', 'settings.json'),
      JSON.stringify(
        {
          'workbench.startupEditor': 'none',
          'workbench.tips.enabled': false,
          'workbench.enableExperiments': false,
          'telemetry.telemetryLevel': 'off',
          'extensions.autoCheckUpdates': false,
          'extensions.autoUpdate': false,
          'security.workspace.trust.enabled': false,
          'chat.disableAIFeatures': true,
          // Keystrokes must land as typed: no completion, auto-closing or auto-indent.
          'editor.autoClosingBrackets': 'never',
          'editor.autoClosingQuotes': 'never',
          'editor.autoSurround': 'never',
          'editor.autoIndent': 'none',
          'editor.quickSuggestions': { other: false, comments: false, strings: false },
          'editor.suggestOnTriggerCharacters': false,
          'editor.acceptSuggestionOnEnter': 'off',
          'editor.wordBasedSuggestions': 'off',
          'editor.formatOnType': false,
          'editor.inlineSuggest.enabled': false,
          'files.autoSave': 'off',
          'mesh.serverUrl': server.url,
          'mesh.displayName': 'Grace',
          'mesh.proxyPath': PROXY_BIN,
          // xterm's DOM renderer: the test reads a run's terminal as text.
          'terminal.integrated.gpuAcceleration': 'off',
          // Every LSP message in the Mesh log (artifacts/vscode-e2e/vscode-Mesh.log).
          'mesh.trace.server': 'verbose',
        },
        null,
        2,
      ),
    );
    // mesh.proxyPath is machine-scoped: once the browser's configuration reaches the extension
    // host, a remote window (code-server is one) drops machine settings of the user file and
    // keeps the remote machine's. Set there, it holds for the whole run, debug adapter included.
    mkdirSync(path.join(UD, 'Machine'), { recursive: true });
    writeFileSync(path.join(UD, 'Machine', 'settings.json'), JSON.stringify({ 'mesh.proxyPath': PROXY_BIN }, null, 2));
    port = await freePort();
    start('code-server', process.execPath, [
      CODE_SERVER, ...cs, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry',
      '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', WS,
    ], { env: { ...process.env, MESH_TEST_OUT: EXT_OUT, MESH_LOG: process.env.MESH_LOG ?? 'debug' } });
    await until('code-server /healthz', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 30_000, 200);
  });

  await check('the workbench loads and the extension shows its status bar item', async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    });
    if (PIDFILE && browser.process?.()?.pid) appendFileSync(PIDFILE, `${browser.process().pid}\n`);
    const context = await browser.newContext({ viewport: { width: 1400, height: 850 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: `http://127.0.0.1:${port}` });
    page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') appendFileSync(path.join(LOGS, 'browser-console.log'), `${m.text()}\n`); });
    await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('.monaco-workbench', { timeout: WORKBENCH_TIMEOUT_MS });
    log('workbench up');
    await statusBarItem().waitFor({ timeout: WORKBENCH_TIMEOUT_MS });
  });

  await check('"Mesh: Join Session" says what is wrong with a bad link', async () => {
    await runCommand('Mesh: Join Session');
    await page.locator('.quick-input-widget', { hasText: 'Paste the join link' }).first().waitFor({ timeout: 10_000 });
    await page.locator('.quick-input-widget input').fill(`${server.url}/rooms/nope`);
    await page.locator('.quick-input-message', { hasText: 'not a mesh link' }).first().waitFor({ timeout: 5_000 });
    await page.keyboard.press('Escape');
  }, { critical: false });

  await check('"Mesh: Join Session" with the link joins the room and writes main.py', async () => {
    await runCommand('Mesh: Join Session');
    const input = page.locator('.quick-input-widget input');
    await page.locator('.quick-input-widget', { hasText: 'Paste the join link' }).first().waitFor({ timeout: 10_000 });
    await input.fill(shared.link);
    await page.keyboard.press('Enter');
    await until(`${FILE} in the workspace folder`, () => existsSync(path.join(WS, FILE)) && readFileSync(path.join(WS, FILE), 'utf8') === INITIAL, JOIN_TIMEOUT_MS, 200).catch(async (e) => {
      const errors = await page.locator('.notifications-toasts .notification-list-item-message').allTextContents().catch(() => []);
      throw new Error(`${e.message}${errors.length ? `; VS Code shows: ${errors.join(' | ')}` : ''}; status bar: "${await statusBarText().catch(() => '?')}"`);
    });
  });

  await check('the status bar shows the session with 2 participants; Ada sees Grace join', async () => {
    await until('"Mesh (2)" in the status bar', async () => (await statusBarText()).includes('Mesh (2)'), SYNC_TIMEOUT_MS, 200).catch(async (e) => {
      throw new Error(`${e.message}; it says "${await statusBarText().catch(() => '?')}"`);
    });
    await ada.waitFor('Grace in Ada\'s mesh/participants', () => adaSees().includes('Grace')).catch((e) => {
      throw new Error(`${e.message}; Ada sees ${JSON.stringify(adaSees())}`);
    });
  }, { critical: false });

  await check('main.py opens in an editor', async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+P');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(FILE);
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: FILE }).first().waitFor({ timeout: 15_000 });
    await page.keyboard.press('Enter');
    await page.locator('.tab', { hasText: FILE }).first().waitFor({ timeout: 10_000 });
    await page.locator('.editor-instance .monaco-editor .view-lines', { hasText: 'greet' }).first().waitFor({ timeout: 10_000 });
  });

  const typed = '# typed in VS Code: héllo wörld';
  await check('text typed in VS Code reaches Ada', async () => {
    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type(`\n${typed}`, { delay: 15 });
    await ada.waitFor('the typed line in Ada\'s buffer', () => (adaText() ?? '').includes(typed), SYNC_TIMEOUT_MS).catch((e) => {
      throw new Error(`${e.message}; Ada has ${JSON.stringify(adaText())}`);
    });
    // It came as versioned workspace/applyEdits that her buffer took.
    if (ada.stats.applied === 0) throw new Error('Ada\'s buffer changed without an applied workspace/applyEdit');
  });

  await check('Ada\'s typing appears in VS Code', async () => {
    // One didChange per keystroke, the emoji a single keystroke of two UTF-16 units.
    await ada.type(FILE, '# edited by Ada 🎉\n', { at: { line: 0, character: 0 }, delay: 15 });
    await until('Ada\'s line in VS Code', async () => (await vscodeDocument()).text?.includes('# edited by Ada 🎉')).catch(async (e) => {
      throw new Error(`${e.message}; VS Code has ${JSON.stringify((await vscodeDocument().catch(() => ({}))).text)}`);
    });
  });

  await check('Ada\'s cursor is drawn in VS Code with her name', async () => {
    // Line 2 is "    return ..." (Ada added a line at the top); the caret goes after "retu".
    ada.setCursor(FILE, { line: 2, character: 8 });
    await until('a decoration showing "Ada"', () => decorationShown(ADA), SYNC_TIMEOUT_MS, 200);
    await page.screenshot({ path: path.join(ARTIFACTS, 'vscode-remote-cursor.png') });
    log(`screenshot: ${path.join(ARTIFACTS, 'vscode-remote-cursor.png')}`);
  }, { critical: false });

  await check('concurrent typing on both sides converges byte for byte (VS Code = Ada = room)', async () => {
    // Ada types at the end of the first line while the person types at the end of the file.
    const remote = ada.type(FILE, ' ada ✓'.repeat(4), { at: (text) => positionAt(text, text.indexOf('\n')), delay: 30 });
    await page.keyboard.type(' and more typing 𝒳 from VS Code', { delay: 20 });
    await remote;
    let last;
    await until('equal texts', async () => {
      last = await vscodeDocument();
      return last.text === adaText();
    }, SYNC_TIMEOUT_MS, 500).catch((e) => {
      throw new Error(`${e.message}: VS Code ${JSON.stringify(last?.text)} vs Ada ${JSON.stringify(adaText())}`);
    });
    const room = await roomText(shared.link, FILE);
    const [v, a, r] = [last.text, adaText(), room].map((t) => Buffer.from(t, 'utf8'));
    if (Buffer.compare(v, a) !== 0 || Buffer.compare(a, r) !== 0) {
      throw new Error(`texts differ as bytes:\n       VS Code: ${JSON.stringify(last.text)}\n       Ada:     ${JSON.stringify(adaText())}\n       room:    ${JSON.stringify(room)}`);
    }
    for (const part of [' ada ✓ ada ✓ ada ✓ ada ✓\n', ' and more typing 𝒳 from VS Code']) {
      if (!room.includes(part)) throw new Error(`the room's text lacks ${JSON.stringify(part)}: ${JSON.stringify(room)}`);
    }
  });

  await check('Ada\'s proxy checks her buffer after quiet and finds it in step (no resync)', async () => {
    // The proxy asks for mesh/documentHash once a document has been quiet for a while; a
    // mismatch would make it replace the buffer and say so with mesh/notify.
    const quietSince = ada.changedAt(FILE);
    await ada.waitFor('a mesh/documentHash request after the last change', () => ada.requests('mesh/documentHash').some((r) => r.at >= quietSince), SYNC_TIMEOUT_MS);
    await sleep(500);
    const resyncs = ada.notifications('mesh/notify').filter((n) => /resync|drift/i.test(n.params?.message ?? ''));
    if (resyncs.length > 0) throw new Error(`Ada's proxy repaired her buffer: ${JSON.stringify(resyncs.map((n) => n.params))}`);
    log(`Ada applied ${ada.stats.applied} edit batches, refused ${ada.stats.refused} stale ones, answered ${ada.stats.hashRequests} hash checks`);
  }, { critical: false });

  await check('the Mesh view lists Grace (you) and Ada; a click on Ada follows her', async () => {
    // Ada's proxy says Hello with her name, so the view names her.
    await runCommand('View: Show Mesh');
    const view = page.locator('.pane', { hasText: 'Participants' }).first();
    await view.locator('.monaco-list-row', { hasText: 'Grace (you)' }).first().waitFor({ timeout: 10_000 });
    const row = view.locator('.monaco-list-row').filter({ hasNotText: '(you)' }).filter({ hasText: ADA }).first();
    await row.waitFor({ timeout: 10_000 });
    await page.screenshot({ path: path.join(LOGS, 'participants.png') });
    await row.click();
    await until(`"${ADA}" followed in the status bar`, async () => (await statusBarText()).includes(ADA), SYNC_TIMEOUT_MS, 200).catch(async (e) => {
      throw new Error(`${e.message}; it says "${await statusBarText().catch(() => '?')}"`);
    });
    await runCommand('Mesh: Stop Following');
    await until('following to stop', async () => !(await statusBarText()).includes(ADA), SYNC_TIMEOUT_MS, 200);
  }, { critical: false });

  await check('a chat message sent from the chat panel reaches the room and comes back', async () => {
    await runCommand('Mesh: Open Chat');
    const frame = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
    const input = frame.locator('#input');
    await input.waitFor({ timeout: 15_000 });
    const text = 'hello from <b>VS Code</b> 👋';
    await input.fill(text);
    await input.press('Enter');
    const received = () => ada.notifications('mesh/chatMessage').map((n) => n.params?.entry);
    await ada.waitFor('the message in Ada\'s mesh/chatMessage', () => received().some((e) => e?.text === text && e?.author === 'Grace')).catch((e) => {
      throw new Error(`${e.message}; Ada received ${JSON.stringify(received())}`);
    });
    // The proxy's mesh/chatMessage comes back; the panel shows it as text, not as markup.
    await frame.locator('.entry .text', { hasText: text }).first().waitFor({ timeout: SYNC_TIMEOUT_MS });
    // And the other way: Ada's message appears in the open panel.
    const reply = 'hi Grace, from Ada\'s editor ✍️';
    await ada.chat(reply);
    await frame.locator('.entry', { hasText: reply }).first().waitFor({ timeout: SYNC_TIMEOUT_MS });
  }, { critical: false });

  await check('"Mesh: Ask Ghost About Selection" sends the selected line to a real ghost; its answer reaches Ada\'s chat; a suggestion is previewed as a diff and accepted', async () => {
    // An OpenAI-compatible provider on loopback that streams GHOST_ANSWER, and the ghost.
    const asked = [];
    const provider = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        asked.push(JSON.parse(body));
        const content = asked.length === 1 ? GHOST_ANSWER : GHOST_SUGGESTION;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`);
        res.end('data: [DONE]\n\n');
      });
    });
    await new Promise((r) => provider.listen(0, '127.0.0.1', r));
    try {
      start('mesh-ghost', GHOST_BIN, ['--link', shared.link, '--provider-url', `http://127.0.0.1:${provider.address().port}/v1`, '--model', 'scripted'], {
        env: { ...process.env, MESH_GHOST_API_KEY: 'sk-vscode-e2e' },
      });
      await ada.waitFor('the ghost in the room', () => (ada.last('mesh/participants')?.participants ?? []).some((p) => p.client === 'mesh-ghost'));
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+P');
      await page.locator('.quick-input-widget input').fill(FILE);
      await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: FILE }).first().waitFor({ timeout: 15_000 });
      await page.keyboard.press('Enter');
      await page.locator('.tab.active', { hasText: FILE }).first().waitFor({ timeout: 10_000 });
      await page.keyboard.press('Control+Home');
      await page.keyboard.press('Shift+End');
      await runCommand('Mesh: Ask Ghost About Selection');
      const input = page.locator('.quick-input-widget input');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Explain only' }).first().click({ timeout: 10_000 });
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await input.fill('what does greet do?');
      await page.keyboard.press('Enter');
      const answers = () => ada.notifications('mesh/chatMessage').map((n) => n.params?.entry?.text ?? '');
      await ada.waitFor('the ghost\'s answer in Ada\'s chat', () => answers().some((t) => t.startsWith('Request #1 from Grace:') && t.includes(GHOST_ANSWER))).catch((e) => {
        throw new Error(`${e.message}; Ada's chat: ${JSON.stringify(answers())}`);
      });
      const sent = JSON.stringify(asked[0]?.messages ?? []);
      if (!sent.includes('about lines 1-1 of main.py, selected:') || !sent.includes('def greet(name):')) {
        throw new Error(`the model did not get the selected line: ${sent.slice(0, 500)}`);
      }

      // A suggestion: it changes nothing, "Mesh: Ghost Suggestions" previews it as a diff,
      // and Accept in its notification applies it (Ada sees the change).
      const pending = () => (ada.last('mesh/ghostState')?.ghosts ?? []).flatMap((g) => g.suggestions ?? []);
      await ada.waitFor('request #1 done', () => (ada.last('mesh/ghostState')?.ghosts?.[0]?.requests ?? []).some((r) => r.id === 1 && r.status === 'done'));
      await runCommand('Mesh: Ask Ghost About Selection');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Suggest a change' }).first().click({ timeout: 10_000 });
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await input.fill('mark greet');
      await page.keyboard.press('Enter');
      await ada.waitFor('suggestion #2', () => pending().some((s) => s.id === 2));
      if (adaText().includes(GHOST_MARK)) throw new Error('a suggestion changed the file before anyone accepted it');
      await runCommand('Mesh: Ghost Suggestions');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: '#2 main.py' }).first().click({ timeout: 10_000 });
      await page.locator('.tab', { hasText: 'Ghost suggestion #2' }).first().waitFor({ timeout: 10_000 });
      await page.locator('.monaco-diff-editor .modified .view-lines', { hasText: GHOST_MARK.trim() }).first().waitFor({ timeout: 10_000 });
      await page.screenshot({ path: path.join(ARTIFACTS, 'vscode-ghost-suggestion.png') });
      log(`screenshot: ${path.join(ARTIFACTS, 'vscode-ghost-suggestion.png')}`);
      const toast = page.locator('.notification-list-item', { hasText: 'suggestion #2' }).first();
      await toast.getByRole('button', { name: 'Accept' }).click({ timeout: 10_000 });
      await ada.waitFor('the accepted suggestion in Ada\'s text', () => adaText().includes(GHOST_MARK));
      await ada.waitFor('no suggestion pending', () => pending().length === 0);
    } finally {
      provider.close();
    }
  }, { critical: false });

  await check(`${RUN_FILE} opens; the editor title offers Mesh: Run`, async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget input').fill(RUN_FILE);
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: RUN_FILE }).first().waitFor({ timeout: 15_000 });
    await page.keyboard.press('Enter');
    await page.locator('.tab.active', { hasText: RUN_FILE }).first().waitFor({ timeout: 10_000 });
    await page.locator('.editor-actions .codicon-play').first().waitFor({ timeout: 10_000 });
  }, { critical: false });

  await check('"Mesh: Run" runs the file in the room: output in a terminal, typed input reaches the program, Ada watches', async () => {
    await runCommand('Mesh: Run');
    await until('the program\'s prompt in a terminal', async () => (await terminalText()).includes('name? '), RUN_TIMEOUT_MS, 200).catch(async (e) => {
      const errors = await page.locator('.notifications-toasts .notification-list-item-message').allTextContents().catch(() => []);
      throw new Error(`${e.message}; terminal: ${JSON.stringify(await terminalText())}${errors.length ? `; VS Code shows: ${errors.join(' | ')}` : ''}`);
    });
    const started = ada.notifications('mesh/runStarted').map((n) => n.params).find((p) => p?.path === RUN_FILE);
    if (started?.byName !== 'Grace' || started.you !== false) throw new Error(`Ada's mesh/runStarted: ${JSON.stringify(started)}`);
    await page.locator('.terminal-wrapper.active .xterm').first().click();
    await page.keyboard.type('Grace', { delay: 20 });
    await page.keyboard.press('Enter');
    await until('the answer and the exit line in the terminal', async () => /hi Grace[\s\S]*■ exit 0/.test(await terminalText()), RUN_TIMEOUT_MS, 200).catch(async (e) => {
      throw new Error(`${e.message}; terminal: ${JSON.stringify(await terminalText())}`);
    });
    await ada.waitFor('the same output in Ada\'s mesh/runOutput', () => adaRunOutput(started.runId) === 'name? hi Grace\n').catch((e) => {
      throw new Error(`${e.message}; Ada has ${JSON.stringify(adaRunOutput(started.runId))}`);
    });
    await page.screenshot({ path: path.join(ARTIFACTS, 'vscode-run-terminal.png') });
    log(`screenshot: ${path.join(ARTIFACTS, 'vscode-run-terminal.png')}`);
  }, { critical: false });

  await check(`${DEBUG_FILE} opens; "Debug: Toggle Breakpoint" sets a breakpoint on line ${DEBUG_LINE}`, async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget input').fill(DEBUG_FILE);
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: DEBUG_FILE }).first().waitFor({ timeout: 15_000 });
    await page.keyboard.press('Enter');
    await page.locator('.tab.active', { hasText: DEBUG_FILE }).first().waitFor({ timeout: 10_000 });
    const editor = page.locator('.editor-instance .monaco-editor .view-lines', { hasText: 'y = x + 1' }).first();
    await editor.waitFor({ timeout: 10_000 });
    await editor.click();
    await page.keyboard.press('Control+Home');
    for (let i = 1; i < DEBUG_LINE; i++) await page.keyboard.press('ArrowDown');
    await runCommand('Debug: Toggle Breakpoint');
    await page.locator('.editor-instance .monaco-editor .codicon-debug-breakpoint').first().waitFor({ timeout: 10_000 });
    const want = { path: path.join(WS, DEBUG_FILE), line: DEBUG_LINE, enabled: true };
    const report = await until('the breakpoint in VS Code', async () => {
      const d = await vscodeDocument();
      return d.breakpoints?.length === 1 ? d : false;
    }, 10_000, 200);
    if (JSON.stringify(report.breakpoints[0]) !== JSON.stringify(want)) throw new Error(`breakpoints ${JSON.stringify(report.breakpoints)}, expected ${JSON.stringify([want])}`);
  }, { critical: false });

  let debugStopped = false;
  await check(`"Mesh: Debug" stops at the breakpoint on line ${DEBUG_LINE}; the Variables view shows x = 41`, async () => {
    await runCommand('Mesh: Debug');
    await until('the debug toolbar with Continue (the program stopped)', async () => (await debugToolbarButtons()).includes('debug-continue'), DEBUG_TIMEOUT_MS, 250).catch(async (e) => {
      const notes = await notificationTexts();
      throw new Error(`${e.message}; toolbar: ${JSON.stringify(await debugToolbarButtons())}${notes.length ? `; VS Code shows: ${notes.join(' | ')}` : ''}`);
    });
    await runCommand('View: Show Run and Debug');
    let views;
    await until(`the call stack paused on ${DEBUG_FILE}:${DEBUG_LINE}, the current line drawn, x = 41 among the variables`, async () => {
      views = await debugViews();
      const top = views.frames[0];
      return views.states.some((s) => /paused on breakpoint/i.test(s))
        && top?.file === DEBUG_FILE && top.line.startsWith(`${DEBUG_LINE}:`)
        && views.topLine
        && views.variables.some((v) => v.name === 'x' && v.value === '41');
    }, SYNC_TIMEOUT_MS, 250).catch((e) => {
      throw new Error(`${e.message}; the views show ${JSON.stringify(views)}`);
    });
    // y is not assigned yet: the program stopped before line 2 ran.
    if (views.variables.some((v) => v.name === 'y')) throw new Error(`y is already defined: ${JSON.stringify(views.variables)}`);
    debugStopped = true;
    await page.screenshot({ path: path.join(ARTIFACTS, 'vscode-debug-stop.png') });
    log(`screenshot: ${path.join(ARTIFACTS, 'vscode-debug-stop.png')}`);
  }, { critical: false });

  await check('"Debug: Continue" runs the program to its end; the session ends; Ada sees its output and its end', async () => {
    if (!debugStopped) throw new Error('not reached: the program did not stop at the breakpoint');
    await runCommand('Debug: Continue');
    await until('the debug session to end', async () => (await vscodeDocument()).debugSession === null && (await debugToolbarButtons()).length === 0, DEBUG_TIMEOUT_MS, 500).catch(async (e) => {
      throw new Error(`${e.message}; toolbar: ${JSON.stringify(await debugToolbarButtons())}; console: ${JSON.stringify(await debugConsoleText())}`);
    });
    // The run's terminal (the server reports the debugged program as a run too) may cover it.
    await page.getByRole('tab', { name: /debug console/i }).first().click();
    await until('the program\'s output in the Debug Console', async () => (await debugConsoleText()).includes('y is 42'), 10_000, 250).catch(async (e) => {
      throw new Error(`${e.message}; it shows ${JSON.stringify(await debugConsoleText())}`);
    });
    // Back to the editor: F1 from the Debug Console's input does not always open the palette.
    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
    const started = ada.notifications('mesh/runStarted').map((n) => n.params).find((p) => p?.path === DEBUG_FILE);
    if (!started) throw new Error(`Ada was not told of the debugged program: ${JSON.stringify(ada.notifications('mesh/runStarted').map((n) => n.params))}`);
    await ada.waitFor('the program\'s output in Ada\'s mesh/runOutput', () => adaRunOutput(started.runId).includes('y is 42')).catch((e) => {
      throw new Error(`${e.message}; Ada has ${JSON.stringify(adaRunOutput(started.runId))}`);
    });
    // The server's end of the session (it lets the adapter exit first): everyone is told.
    const exited = await ada.waitFor('the session\'s end in Ada\'s mesh/runExited', () => ada.notifications('mesh/runExited').find((n) => n.params?.runId === started.runId), DEBUG_TIMEOUT_MS);
    if (exited.params.code !== 0 || exited.params.error) throw new Error(`Ada's mesh/runExited: ${JSON.stringify(exited.params)}`);
  }, { critical: false });

  await check('F5 without a launch.json debugs the active file with the mesh debug type and stops again', async () => {
    if (!debugStopped) throw new Error('not reached: the program did not stop at the breakpoint');
    await page.locator('.editor-instance .monaco-editor .view-lines', { hasText: 'y = x + 1' }).first().click();
    await page.keyboard.press('F5');
    let views;
    await until(`a stop on ${DEBUG_FILE}:${DEBUG_LINE}`, async () => {
      views = await debugViews();
      return (await debugToolbarButtons()).includes('debug-continue') && views.frames[0]?.line.startsWith(`${DEBUG_LINE}:`);
    }, DEBUG_TIMEOUT_MS, 250).catch(async (e) => {
      const notes = await notificationTexts();
      throw new Error(`${e.message}; the views show ${JSON.stringify(views)}${notes.length ? `; VS Code shows: ${notes.join(' | ')}` : ''}`);
    });
    const session = (await vscodeDocument()).debugSession;
    if (session?.type !== 'mesh' || session.name !== 'Mesh: Debug') throw new Error(`the session is ${JSON.stringify(session)}`);
    await runCommand('Debug: Continue');
    await until('the debug session to end', async () => (await vscodeDocument()).debugSession === null, DEBUG_TIMEOUT_MS, 500);
  }, { critical: false });

  // One session from two editors: Neovim (built-in debugger) and this VS Code.
  await sharedDebugChecks({
    check, until, log, page, runCommand, debugViews, debugToolbarButtons, vscodeDocument, notificationTexts, ada, adaRunOutput,
    link: shared?.link, server: server?.url, proxyBin: PROXY_BIN, nvim: NVIM, plugin: PLUGIN, logs: LOGS, artifacts: ARTIFACTS, adopt,
    timeouts: { sync: SYNC_TIMEOUT_MS, debug: DEBUG_TIMEOUT_MS, join: JOIN_TIMEOUT_MS },
  });

  await check('"Mesh: Leave" ends the session; Ada sees Grace go', async () => {
    // A debug session left over by a failed check above holds its own room connection as Grace.
    if ((await vscodeDocument()).debugSession !== null) {
      await runCommand('Debug: Stop');
      await until('the leftover debug session to end', async () => (await vscodeDocument()).debugSession === null, SYNC_TIMEOUT_MS, 500);
    }
    await runCommand('Mesh: Leave');
    await until('the status bar to leave the session', async () => !(await statusBarText()).includes('Mesh ('), SYNC_TIMEOUT_MS, 200);
    await ada.waitFor('Grace gone from Ada\'s mesh/participants', () => !adaSees().includes('Grace')).catch((e) => {
      throw new Error(`${e.message}; Ada sees ${JSON.stringify(adaSees())}`);
    });
  }, { critical: false });

  await check('"Mesh: Share Folder" shares the workspace; a Yjs client joining with its link gets main.py', async () => {
    await runCommand('Mesh: Share Folder');
    const ours = await until('a session with a link', async () => {
      const d = await vscodeDocument();
      return d.state?.kind === 'running' && d.state.status.state === 'connected' && d.state.status.link ? d : false;
    }, JOIN_TIMEOUT_MS, 500);
    // A stock Yjs client joining with the link: what anyone else would get.
    const room = await roomText(ours.state.status.link, FILE, JOIN_TIMEOUT_MS);
    if (room !== ours.text) {
      const onDisk = readFileSync(path.join(WS, FILE), 'utf8');
      const now = (await vscodeDocument()).text;
      throw new Error(`the room's ${FILE} differs from the VS Code buffer${room === onDisk ? ' (it is the file on disk instead)' : ''}:\n       room:   ${JSON.stringify(room)}\n       buffer: ${JSON.stringify(ours.text)}\n       buffer now: ${JSON.stringify(now)}\n       disk:   ${JSON.stringify(onDisk)}`);
    }
  }, { critical: false });

  // Host control (decision 011): Grace hosts the room she just shared.
  let bo;
  await check('as the host, "Mesh: Toggle Approval to Join" holds a joiner in the lobby; Admit on the notification lets them in', async () => {
    const link = (await vscodeDocument()).state?.status?.link;
    if (!link) throw new Error('not reached: Grace shares no room');
    await runCommand('Mesh: Toggle Approval to Join');
    await until('approval on in the session state', async () => (await vscodeDocument()).state?.status?.approval === true, SYNC_TIMEOUT_MS, 300);
    bo = await LspPeer.start({ bin: PROXY_BIN, server: server.url, name: 'Bo', logDir: LOGS, onSpawn: (child) => adopt('bo-mesh-proxy', child) });
    const joined = bo.request('mesh/join', { link }, JOIN_TIMEOUT_MS * 2);
    await bo.waitFor('Bo in the lobby', () => bo.notifications('mesh/status').some((n) => n.params?.state === 'lobby'));
    const toast = page.locator('.notification-list-item', { hasText: 'Bo (' }).filter({ hasText: 'asks to join' }).first();
    await toast.waitFor({ timeout: SYNC_TIMEOUT_MS }).catch(async (e) => {
      throw new Error(`${e.message}; VS Code shows: ${(await notificationTexts()).join(' | ')}`);
    });
    if (bo.last('mesh/status')?.state !== 'lobby') throw new Error('Bo left the lobby before anyone let him in');
    const admit = toast.getByRole('button', { name: 'Admit' });
    await admit.waitFor({ timeout: SYNC_TIMEOUT_MS });
    await page.screenshot({ path: path.join(ARTIFACTS, 'vscode-join-request.png') });
    log(`screenshot: ${path.join(ARTIFACTS, 'vscode-join-request.png')}`);
    await admit.click();
    const result = await joined;
    if (typeof result?.files !== 'number' || result.files < 1) throw new Error(`Bo's join answered ${JSON.stringify(result)}`);
    await until('"Mesh (2)" in the status bar', async () => (await statusBarText()).includes('Mesh (2)'), SYNC_TIMEOUT_MS, 200);
  }, { critical: false });

  /** Picks the quick pick row with `text`, as a person types it and presses Enter. */
  const pick = async (text) => {
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(text);
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: text }).first().waitFor({ timeout: 10_000 });
    await page.keyboard.press('Enter');
  };

  await check('"Mesh: Participants and Roles" makes Bo a reader live, then kicks him; his session ends with the message', async () => {
    if (bo === undefined) throw new Error('not reached: Bo did not join');
    await runCommand('Mesh: Participants and Roles');
    await pick('Bo');
    await pick('Make Reader');
    await bo.waitFor('Bo to be a reader', () => bo.last('mesh/status')?.role === 'reader');
    const told = bo.notifications('mesh/presence').find((n) => n.params?.you && n.params?.role === 'reader');
    if (!told) throw new Error(`Bo was not told: ${JSON.stringify(bo.notifications('mesh/presence').map((n) => n.params))}`);
    await runCommand('Mesh: Participants and Roles');
    await pick('Bo');
    await pick('Kick');
    // Then it offers to revoke the link Bo came in by (the proxy names it): keep it this time.
    await pick('Keep the link');
    const ended = await bo.waitFor('Bo\'s session to end', () => bo.last('mesh/ended'));
    if (ended.reason !== 'kicked' || !/removed from the room by Grace/.test(ended.message)) throw new Error(`Bo was told ${JSON.stringify(ended)}`);
    await until('"Mesh (1)" in the status bar', async () => (await statusBarText()).includes('Mesh (1)'), SYNC_TIMEOUT_MS, 200);
    await bo.stop();
  }, { critical: false });
}

/** Copies the extension's log (and the proxy's stderr, which the client logs there) to the artifacts. */
function collectLogs() {
  const walk = (dir) => {
    for (const e of existsSync(dir) ? readdirSync(dir, { withFileTypes: true }) : []) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/Mesh|exthost|remoteagent/i.test(e.name) && e.name.endsWith('.log')) copyFileSync(p, path.join(LOGS, `vscode-${e.name}`));
    }
  };
  try { walk(path.join(UD, 'logs')); } catch (e) { console.log(`  (could not collect VS Code logs: ${e.message})`); }
  // What the extension's test hooks wrote: mesh-proxy dap's own log among them.
  for (const e of existsSync(EXT_OUT) ? readdirSync(EXT_OUT) : []) {
    if (e.endsWith('.log')) copyFileSync(path.join(EXT_OUT, e), path.join(LOGS, e));
  }
}

let interrupted = false;
const overall = setTimeout(() => {
  interrupted = true;
  console.log(`FAIL the run took longer than ${OVERALL_TIMEOUT_MS / 1000}s`);
  void finish(1);
}, OVERALL_TIMEOUT_MS);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { interrupted = true; void finish(1); });

let finishing = false;
async function finish(code) {
  if (finishing) return;
  finishing = true;
  clearTimeout(overall);
  // Ada first, politely (shutdown/exit); stopAll below signals her group if she lingers.
  await ada?.stop().catch(() => {});
  await browser?.close().catch(() => {});
  await stopAll();
  collectLogs();
  rmSync(WORK, { recursive: true, force: true });
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed + (interrupted ? 1 : 0);
  console.log(`\nlogs: ${LOGS}   e2e time: ${elapsed()}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : code);
}

main().then(() => finish(0), (e) => { console.log(`FAIL unexpected: ${e?.stack ?? e}`); results.push({ ok: false }); return finish(1); });
