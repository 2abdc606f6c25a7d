// A scripted editor for the end-to-end tests: it starts a real `mesh-proxy lsp --stdio` and
// speaks LSP to it over stdio (Content-Length framing), the way Neovim or VS Code would.
// It keeps its own buffers at the versions it reported, applies `workspace/applyEdit` only
// when the version matches (and refuses it otherwise, so the proxy re-bases), answers
// `mesh/documentHash`, types with incremental `didChange`s in UTF-16 positions, moves its
// cursor with `mesh/cursor`, and records every notification the proxy sends.
//
//   const ada = await LspPeer.start({ bin, server, name: 'Ada', files: { 'main.py': '…' } });
//   const { link } = await ada.share();
//   ada.open('main.py');
//   await ada.type('main.py', 'hi', { at: { line: 0, character: 0 } });
//   ada.setCursor('main.py', { line: 2, character: 8 });
//   await ada.waitFor('Grace\'s line', () => ada.text('main.py').includes('…'));
//   await ada.stop();
//
// Every write to the proxy happens synchronously inside one JavaScript turn (buffer change,
// version bump and the bytes handed to the pipe together), so the proxy always sees
// `didChange`s in version order, whether they come from typing or from an applied edit.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

/** How long a request or a wait may take unless the caller says otherwise. */
const DEFAULT_TIMEOUT_MS = 15_000;

// --- text positions (LSP positions in UTF-16 code units, which is what JS strings count) ---

/** The UTF-16 offset of an LSP position; past the end of a line or the text, clamped (as LSP says). */
export function offsetAt(text, { line, character }) {
  let start = 0;
  for (let l = 0; l < line; l++) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) return text.length;
    start = nl + 1;
  }
  const nl = text.indexOf('\n', start);
  const end = nl < 0 ? text.length : nl;
  return Math.min(start + character, end);
}

/** The LSP position of a UTF-16 offset. */
export function positionAt(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split('\n').length - 1;
  return { line, character: offset - (before.lastIndexOf('\n') + 1) };
}

const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');

const LANGUAGES = { '.py': 'python', '.js': 'javascript', '.ts': 'typescript', '.rs': 'rust', '.md': 'markdown' };

export class LspPeer {
  /**
   * Writes `files` into a fresh workspace folder, starts `mesh-proxy lsp --stdio` for it
   * with a private config and state dir, and completes `initialize`/`initialized`.
   *
   * options: bin (the mesh-proxy binary), server (its MESH_SERVER), name (MESH_NAME),
   * files ({ relPath: text }), logDir (where `<name>-lsp.log`, every message both ways,
   * and `<name>-mesh-proxy.log`, its stderr, go; default: none), onSpawn(child) (so the
   * caller can kill the process group even if this object is lost), timeoutMs.
   */
  static async start({ bin, server, name, files = {}, logDir, onSpawn, timeoutMs = DEFAULT_TIMEOUT_MS }) {
    const peer = new LspPeer(name, timeoutMs);
    peer.#home = mkdtempSync(path.join(tmpdir(), `mesh-lsp-peer-${name.toLowerCase()}-`));
    try {
      await peer.#launch({ bin, server, name, files, logDir, onSpawn });
    } catch (e) {
      // The caller never gets the object, so nothing else would stop the process or
      // remove the temp dir.
      await peer.stop();
      throw e;
    }
    return peer;
  }

  async #launch({ bin, server, name, files, logDir, onSpawn }) {
    this.root = path.join(this.#home, 'workspace');
    // Its own config and state: the proxy remembers shared folders in XDG_STATE_HOME, and a
    // developer's ~/.config/mesh must not change the name or server under test.
    const xdg = path.join(this.#home, 'xdg');
    for (const d of [this.root, xdg]) mkdirSync(d, { recursive: true });
    for (const [rel, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(this.root, rel)), { recursive: true });
      writeFileSync(path.join(this.root, rel), text);
    }
    if (logDir) {
      this.#trace = createWriteStream(path.join(logDir, `${name.toLowerCase()}-lsp.log`));
    }
    const env = { ...process.env, MESH_SERVER: server, MESH_NAME: name, XDG_STATE_HOME: xdg, XDG_CONFIG_HOME: xdg };
    // The proxy takes its client kind from clientInfo unless MESH_CLIENT is set; and a
    // colour inherited from the environment would not be this peer's.
    delete env.MESH_CLIENT;
    delete env.MESH_COLOR;
    env.MESH_LOG = process.env.MESH_LOG ?? 'debug';
    // detached: its own process group, so a kill of the group takes anything it starts.
    const child = spawn(bin, ['lsp', '--stdio'], { cwd: this.root, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    onSpawn?.(child);
    if (logDir) {
      const err = createWriteStream(path.join(logDir, `${name.toLowerCase()}-mesh-proxy.log`));
      child.stderr.pipe(err);
    } else {
      child.stderr.resume();
    }
    child.stdout.on('data', (chunk) => this.#receive(chunk));
    child.stdin.on('error', () => { /* the proxy went away; #exited says so */ });
    child.on('error', (e) => this.#gone(`cannot start ${bin}: ${e.message}`));
    child.on('exit', (code, signal) => this.#gone(`mesh-proxy exited (${signal ?? code})`));

    const rootUri = pathToFileURL(this.root).href;
    const init = await this.request('initialize', {
      processId: process.pid,
      clientInfo: { name: 'e2e-lsp-peer', version: '1' },
      rootUri,
      workspaceFolders: [{ uri: rootUri, name: path.basename(this.root) }],
      capabilities: { workspace: { applyEdit: true }, general: { positionEncodings: ['utf-16'] } },
    });
    if (init?.capabilities?.positionEncoding !== 'utf-16') {
      throw new Error(`${name}: initialize did not settle on utf-16: ${JSON.stringify(init)}`);
    }
    this.initializeResult = init;
    this.#send({ jsonrpc: '2.0', method: 'initialized', params: {} });
  }

  /** The workspace folder. */
  root;
  /** The display name. */
  name;
  /** What `initialize` answered. */
  initializeResult;
  /** `workspace/applyEdit`s applied and refused (stale version), `mesh/documentHash`es answered. */
  stats = { applied: 0, refused: 0, hashRequests: 0 };

  #home;
  #child;
  #trace;
  #timeoutMs;
  #inbox = Buffer.alloc(0);
  #nextId = 0;
  #pending = new Map(); // id -> { resolve, reject, method }
  #buffers = new Map(); // uri -> { text, version, caret, changedAt }
  #notifications = []; // { method, params, at }
  #requests = []; // proxy -> editor: { method, params, at }
  #waiters = new Set(); // callbacks re-run whenever something arrives
  #exited; // why the proxy is gone, once it is

  constructor(name, timeoutMs) {
    this.name = name;
    this.#timeoutMs = timeoutMs;
  }

  /** The proxy's pid (it leads its own process group). */
  get pid() {
    return this.#child?.pid;
  }

  /** The file:// URI of a path relative to the workspace folder. */
  uri(rel) {
    return pathToFileURL(path.join(this.root, rel)).href;
  }

  // --- requests --------------------------------------------------------------------------

  /** Sends a request; resolves with its result, rejects with the proxy's error message. */
  request(method, params, timeoutMs = this.#timeoutMs) {
    if (this.#exited) return Promise.reject(new Error(`${this.name}: ${this.#exited}`));
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}: ${method} got no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        method,
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.#send({ jsonrpc: '2.0', id, method, params });
    });
  }

  /** Sends a notification. */
  notify(method, params) {
    this.#send({ jsonrpc: '2.0', method, params });
  }

  /** `mesh/share`: shares the workspace folder; `{ room, link, readLink }`. */
  share(params = {}) {
    return this.request('mesh/share', params, Math.max(this.#timeoutMs, 30_000));
  }

  /** `mesh/chat`. */
  chat(text) {
    return this.request('mesh/chat', { text });
  }

  // --- buffers ---------------------------------------------------------------------------

  /** Opens a file of the workspace with its text on disk (`didOpen`, version 1). */
  open(rel) {
    const uri = this.uri(rel);
    const text = readFileSync(path.join(this.root, rel), 'utf8');
    this.#buffers.set(uri, { text, version: 1, caret: 0, changedAt: Date.now() });
    const languageId = LANGUAGES[path.extname(rel)] ?? 'plaintext';
    this.notify('textDocument/didOpen', { textDocument: { uri, languageId, version: 1, text } });
    return uri;
  }

  /** The text of an open buffer (null when not open). */
  text(rel) {
    return this.#buffers.get(this.uri(rel))?.text ?? null;
  }

  /** The version last reported for an open buffer. */
  version(rel) {
    return this.#buffers.get(this.uri(rel))?.version ?? null;
  }

  /** When the buffer last changed, by typing or by an applied edit (ms since the epoch). */
  changedAt(rel) {
    return this.#buffers.get(this.uri(rel))?.changedAt ?? null;
  }

  /**
   * Replaces `range` (LSP positions) with `text` and reports it as one incremental
   * `didChange`. The caret ends after the inserted text.
   */
  edit(rel, range, text) {
    const uri = this.uri(rel);
    const buf = this.#buffers.get(uri);
    if (!buf) throw new Error(`${this.name}: ${rel} is not open`);
    const a = offsetAt(buf.text, range.start);
    const b = Math.max(a, offsetAt(buf.text, range.end));
    // The range sent is the clamped one, so it always names what was replaced.
    const lspRange = { start: positionAt(buf.text, a), end: positionAt(buf.text, b) };
    buf.text = buf.text.slice(0, a) + text + buf.text.slice(b);
    buf.version += 1;
    buf.caret = a + text.length;
    buf.changedAt = Date.now();
    this.notify('textDocument/didChange', {
      textDocument: { uri, version: buf.version },
      contentChanges: [{ range: lspRange, text }],
    });
  }

  /**
   * Types `text` one character (code point) at a time at the caret, one `didChange` per
   * keystroke, `delay` ms apart. `at` first moves the caret: a position, or a function of
   * the buffer's text giving one (evaluated when typing starts). Remote edits that land
   * meanwhile move the caret as they would in an editor.
   */
  async type(rel, text, { at, delay = 15 } = {}) {
    const buf = this.#buffers.get(this.uri(rel));
    if (!buf) throw new Error(`${this.name}: ${rel} is not open`);
    if (at !== undefined) {
      buf.caret = offsetAt(buf.text, typeof at === 'function' ? at(buf.text) : at);
    }
    let first = true;
    for (const ch of text) {
      if (!first && delay > 0) await sleep(delay);
      first = false;
      const here = positionAt(buf.text, buf.caret);
      this.edit(rel, { start: here, end: here }, ch);
    }
  }

  /** Moves the selection (and the caret to its head) and tells the proxy with `mesh/cursor`. */
  setCursor(rel, anchor, head = anchor) {
    const uri = this.uri(rel);
    const buf = this.#buffers.get(uri);
    if (buf) buf.caret = offsetAt(buf.text, head);
    this.notify('mesh/cursor', { uri, selections: [{ anchor, head }] });
  }

  // --- what the proxy said ---------------------------------------------------------------

  /** Notifications received with this method, oldest first: `{ method, params, at }`. */
  notifications(method) {
    return this.#notifications.filter((n) => method === undefined || n.method === method);
  }

  /** The params of the latest notification with this method, or undefined. */
  last(method) {
    return this.notifications(method).at(-1)?.params;
  }

  /** Requests the proxy sent to this editor, oldest first: `{ method, params, at }`. */
  requests(method) {
    return this.#requests.filter((r) => method === undefined || r.method === method);
  }

  /**
   * Resolves with the first truthy value of `pred()`, re-checked whenever the proxy says
   * something and every 100 ms; rejects after `timeoutMs`, or at once if the proxy exits.
   */
  waitFor(what, pred, timeoutMs = this.#timeoutMs) {
    return new Promise((resolve, reject) => {
      let timer;
      let poll;
      const done = (fn, v) => {
        this.#waiters.delete(test);
        clearTimeout(timer);
        clearInterval(poll);
        fn(v);
      };
      const test = () => {
        let v;
        try {
          v = pred();
        } catch (e) {
          return done(reject, e);
        }
        if (v) return done(resolve, v);
        if (this.#exited) return done(reject, new Error(`${this.name}: ${this.#exited} while waiting for ${what}`));
      };
      timer = setTimeout(() => done(reject, new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      poll = setInterval(test, 100);
      this.#waiters.add(test);
      test();
    });
  }

  /**
   * Ends the proxy: `shutdown` and `exit` as an editor would, then SIGTERM and SIGKILL to
   * its process group if it lingers; removes the workspace and state dirs.
   */
  async stop() {
    const child = this.#child;
    // Still running even when #exited is set: a garbled stream makes this object give up on
    // the proxy without the process having ended.
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      if (!this.#exited) {
        try {
          await this.request('shutdown', null, 3000);
          this.notify('exit', null);
        } catch { /* it will be signalled below */ }
      }
      for (const [sig, ms] of [[null, 3000], ['SIGTERM', 3000], ['SIGKILL', 2000]]) {
        if (sig) {
          try { process.kill(-child.pid, sig); } catch { /* already gone */ }
        }
        if (await Promise.race([exited.then(() => true), sleep(ms).then(() => false)])) break;
      }
    }
    this.#trace?.end();
    if (this.#home) rmSync(this.#home, { recursive: true, force: true });
  }

  // --- the wire --------------------------------------------------------------------------

  #send(msg) {
    if (this.#exited) return;
    const body = Buffer.from(JSON.stringify(msg), 'utf8');
    this.#trace?.write(`${new Date().toISOString()} -> ${body}\n`);
    // One write per message: the pipe keeps the order of writes, and nothing else writes.
    this.#child.stdin.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]));
  }

  #receive(chunk) {
    this.#inbox = Buffer.concat([this.#inbox, chunk]);
    for (;;) {
      const headerEnd = this.#inbox.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const header = this.#inbox.subarray(0, headerEnd).toString('ascii');
      const m = /Content-Length:\s*(\d+)/i.exec(header);
      if (!m) {
        this.#gone(`the proxy wrote a frame without Content-Length: ${JSON.stringify(header)}`);
        try { process.kill(-this.#child.pid, 'SIGTERM'); } catch { /* already gone */ }
        return;
      }
      const len = Number(m[1]);
      if (this.#inbox.length < headerEnd + 4 + len) return;
      const body = this.#inbox.subarray(headerEnd + 4, headerEnd + 4 + len);
      this.#inbox = this.#inbox.subarray(headerEnd + 4 + len);
      this.#trace?.write(`${new Date().toISOString()} <- ${body}\n`);
      let msg;
      try {
        msg = JSON.parse(body.toString('utf8'));
      } catch (e) {
        this.#gone(`the proxy wrote invalid JSON (${e.message})`);
        return;
      }
      this.#dispatch(msg);
      for (const w of [...this.#waiters]) w();
    }
  }

  #dispatch(msg) {
    const { id, method } = msg;
    if (method !== undefined && id !== undefined) {
      this.#requests.push({ method, params: msg.params, at: Date.now() });
      let result;
      let error;
      switch (method) {
        case 'workspace/applyEdit':
          result = this.#applyEdit(msg.params);
          break;
        case 'mesh/documentHash': {
          this.stats.hashRequests += 1;
          const buf = this.#buffers.get(msg.params?.uri);
          if (buf) result = { version: buf.version, sha256: sha256(buf.text) };
          else error = { code: -32602, message: `unknown document ${msg.params?.uri}` };
          break;
        }
        default:
          error = { code: -32601, message: `unsupported ${method}` };
      }
      this.#send(error ? { jsonrpc: '2.0', id, error } : { jsonrpc: '2.0', id, result });
    } else if (method !== undefined) {
      this.#notifications.push({ method, params: msg.params, at: Date.now() });
    } else if (id !== undefined) {
      const p = this.#pending.get(id);
      if (!p) return;
      this.#pending.delete(id);
      if (msg.error) p.reject(new Error(`${this.name}: ${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
    }
  }

  /**
   * Applies a versioned edit like an editor: only at the version the proxy names, reporting
   * the change (`didChange`, next version) before answering `applied: true`.
   */
  #applyEdit(params) {
    const change = params?.edit?.documentChanges?.[0];
    const uri = change?.textDocument?.uri;
    const buf = this.#buffers.get(uri);
    if (!buf || change.textDocument.version !== buf.version || !Array.isArray(change.edits)) {
      this.stats.refused += 1;
      return { applied: false };
    }
    // The edits' ranges all refer to the text before the batch. Applied last-first, each
    // range still means the same text (nothing before it has moved), and a didChange whose
    // contentChanges come in that order tells the proxy exactly what was done. Equal starts:
    // the later edit goes first, so the earlier one's text ends up before it, as LSP says.
    const ordered = change.edits
      .map((e, i) => ({ e, i }))
      .sort((x, y) => y.e.range.start.line - x.e.range.start.line
        || y.e.range.start.character - x.e.range.start.character
        || y.i - x.i)
      .map(({ e }) => e);
    let { text, caret } = buf;
    for (const e of ordered) {
      const a = offsetAt(text, e.range.start);
      const b = Math.max(a, offsetAt(text, e.range.end));
      text = text.slice(0, a) + e.newText + text.slice(b);
      // Where an editor's caret goes: after text inserted before (or at) it, to the end of
      // a replacement that swallowed it, nowhere for edits after it.
      if (b <= caret) caret += e.newText.length - (b - a);
      else if (a < caret) caret = a + e.newText.length;
    }
    buf.text = text;
    buf.caret = caret;
    buf.version += 1;
    buf.changedAt = Date.now();
    this.stats.applied += 1;
    this.notify('textDocument/didChange', {
      textDocument: { uri, version: buf.version },
      contentChanges: ordered.map((e) => ({ range: e.range, text: e.newText })),
    });
    return { applied: true };
  }

  #gone(why) {
    if (this.#exited) return;
    this.#exited = why;
    for (const p of this.#pending.values()) p.reject(new Error(`${this.name}: ${why}`));
    this.#pending.clear();
    for (const w of [...this.#waiters]) w();
  }
}
