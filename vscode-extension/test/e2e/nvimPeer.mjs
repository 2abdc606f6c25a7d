// A real headless Neovim as a participant in the end-to-end test: it runs the repository's
// Neovim plugin (neovim-plugin/) with its own mesh-proxy, and no nvim-dap, so `:Mesh debug`
// uses the plugin's built-in debugger. The test drives it as a person would: Ex commands and
// keys through Neovim's own remote interface (`nvim --server SOCK --remote-send/-expr`), and
// reads back what the plugin shows (signs, the debugger window, messages) as JSON.
//
//   const nora = await NvimPeer.start({ nvim, plugin, server, proxy, name: 'Nora', logDir, onSpawn });
//   await nora.command(`Mesh join ${link}`);
//   await nora.keys('2G<F9>');
//   const state = await nora.debugState();
//   await nora.stop();
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A fresh Neovim opens its socket well within this on a loaded machine. */
const START_TIMEOUT_MS = 20_000;
/** One remote call: Neovim answers at once unless it is blocked, which is then a failure. */
const CALL_TIMEOUT_MS = 10_000;

// Run in the Neovim after it starts: the plugin from this checkout, every vim.notify kept
// (the test reads them), and what the test reads back about debugging.
const SETUP_LUA = `
local plugin, server, proxy, name = vim.env.MESH_E2E_PLUGIN, vim.env.MESH_E2E_SERVER, vim.env.MESH_E2E_PROXY, vim.env.MESH_E2E_NAME
vim.opt.runtimepath:prepend(plugin)
vim.o.swapfile = false
vim.o.shada = ""
vim.o.columns = 160
vim.o.lines = 50
vim.cmd("runtime plugin/mesh.lua")
_G.MeshE2E = { messages = {} }
vim.notify = function(msg, level)
  table.insert(MeshE2E.messages, tostring(msg))
end
require("mesh").setup({ server = server, proxy = proxy, name = name })
local function lines_in(ns, bufnr)
  local out = {}
  for _, m in ipairs(vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, {})) do
    out[#out + 1] = m[2] + 1
  end
  table.sort(out)
  return out
end
function MeshE2E.debug_state(file)
  local bufnr = vim.fn.bufnr(file)
  local current = require("mesh.dap.marks").current()
  local dap = package.loaded["mesh.dap"]
  return {
    nvim_dap = (pcall(require, "dap")),
    active = dap ~= nil and dap.active() or false,
    window = require("mesh.dap.ui").lines(),
    current = current and { file = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(current.bufnr), ":t"), line = current.line } or vim.NIL,
    own = bufnr ~= -1 and lines_in(require("mesh.dap.marks").ns, bufnr) or {},
    shared = bufnr ~= -1 and lines_in(require("mesh.breakpoints").ns, bufnr) or {},
    status = require("mesh").status() or vim.NIL,
    buffer = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(0), ":t"),
  }
end
`;

export class NvimPeer {
  #nvim;
  #socket;
  #dir;
  #child;

  /**
   * Starts `nvim --headless` in a fresh empty folder (its workspace), listening on a socket,
   * with the plugin set up for `server` as `name`. options: nvim (the binary), plugin (the
   * plugin's folder), server, proxy (the mesh-proxy binary), name, logDir (its stdout and
   * stderr go to `<name>-nvim.log`), onSpawn(child) (for the caller's cleanup by pid).
   */
  static async start({ nvim, plugin, server, proxy, name, logDir, onSpawn }) {
    const peer = new NvimPeer();
    peer.#nvim = nvim;
    peer.#dir = mkdtempSync(path.join(tmpdir(), `mesh-nvim-peer-${name.toLowerCase()}-`));
    const work = path.join(peer.#dir, 'work');
    mkdirSync(work);
    peer.#socket = path.join(peer.#dir, 'nvim.sock');
    const setup = path.join(peer.#dir, 'setup.lua');
    writeFileSync(setup, SETUP_LUA);
    const log = createWriteStream(path.join(logDir, `${name.toLowerCase()}-nvim.log`));
    // Neovim's own state (its LSP log, the proxy's record of the room under mesh/) stays in
    // the peer's folder; `--clean` keeps the machine's configuration out.
    const env = {
      ...process.env,
      XDG_STATE_HOME: path.join(peer.#dir, 'state'),
      XDG_CONFIG_HOME: path.join(peer.#dir, 'config'),
      XDG_DATA_HOME: path.join(peer.#dir, 'data'),
      MESH_E2E_PLUGIN: plugin, MESH_E2E_SERVER: server, MESH_E2E_PROXY: proxy, MESH_E2E_NAME: name,
    };
    peer.#child = spawn(nvim, ['--headless', '--clean', '--listen', peer.#socket, '-c', `luafile ${setup}`], {
      cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    peer.#child.stdout.pipe(log, { end: false });
    peer.#child.stderr.pipe(log, { end: false });
    onSpawn?.(peer.#child);
    const end = Date.now() + START_TIMEOUT_MS;
    while (!existsSync(peer.#socket)) {
      if (peer.#child.exitCode !== null) throw new Error(`nvim exited with ${peer.#child.exitCode}; see ${logDir}/${name.toLowerCase()}-nvim.log`);
      if (Date.now() > end) throw new Error(`nvim did not open ${peer.#socket} within ${START_TIMEOUT_MS} ms`);
      await sleep(50);
    }
    // The setup runs after the socket opens: wait until it did.
    const ready = Date.now() + START_TIMEOUT_MS;
    while ((await peer.expr('MeshE2E ~= nil').catch(() => false)) !== true) {
      if (Date.now() > ready) throw new Error('the plugin setup did not run in nvim');
      await sleep(50);
    }
    return peer;
  }

  /** The folder Neovim works in (where `:Mesh join` puts the room's files). */
  get workDir() {
    return path.join(this.#dir, 'work');
  }

  /** Evaluates a Lua expression in Neovim and returns its value (through JSON). */
  async expr(lua) {
    const wrapped = `luaeval('vim.json.encode({ v = (${lua.replace(/'/g, "''")}) })')`;
    const { stdout } = await run(this.#nvim, ['--server', this.#socket, '--remote-expr', wrapped], { timeout: CALL_TIMEOUT_MS });
    return JSON.parse(stdout).v;
  }

  /** Runs an Ex command as typed on the command line (errors come back as a rejection). */
  async command(ex) {
    const out = await this.expr(`(function() local ok, err = pcall(vim.cmd, ${JSON.stringify(ex)}); return ok and '' or tostring(err) end)()`);
    if (out !== '') throw new Error(`:${ex} failed in Neovim: ${out}`);
  }

  /** Types keys (Neovim's notation, e.g. `2G<F9>`) as a person at the keyboard would. */
  async keys(keys) {
    await run(this.#nvim, ['--server', this.#socket, '--remote-send', keys], { timeout: CALL_TIMEOUT_MS });
  }

  /** Everything vim.notify showed, in order. */
  messages() {
    return this.expr('MeshE2E.messages');
  }

  /** What the plugin shows of debugging for `file` (a buffer name): see SETUP_LUA. */
  debugState(file) {
    return this.expr(`MeshE2E.debug_state(${JSON.stringify(file)})`);
  }

  /** Quits Neovim (its proxies with it) and removes its folder. */
  async stop() {
    if (this.#child && this.#child.exitCode === null) {
      await this.keys('<C-\\><C-n>:qa!<CR>').catch(() => {});
      const exited = await Promise.race([new Promise((r) => this.#child.once('exit', () => r(true))), sleep(5000).then(() => false)]);
      if (!exited) {
        try { process.kill(-this.#child.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
