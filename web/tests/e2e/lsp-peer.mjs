// An editor peer for the browser suite: a real `mesh-proxy lsp` driven over stdio by a small
// LSP client, joined to the room the way the VS Code and Neovim plugins join one
// (`initialize` with a workspace folder, then `mesh/join {link}`). It records every
// notification the proxy sends (`mesh/runStarted`, `mesh/runOutput`, ...) and answers the
// requests an editor must answer.

import { spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

/** How long one LSP request may take before the peer gives up on it. */
const REQUEST_TIMEOUT_MS = 60_000

/** The largest LSP message the peer reads: run output comes in small pieces. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024

export class LspPeer {
  /**
   * Starts `mesh-proxy lsp --stdio` (as editors do) for `folder` and initializes it.
   * `env` carries MESH_SERVER and the like.
   */
  static async start ({ proxyBin, folder, name, server, stateDir, onExit }) {
    mkdirSync(folder, { recursive: true })
    mkdirSync(stateDir, { recursive: true })
    const child = spawn(proxyBin, ['lsp', '--stdio'], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, MESH_SERVER: server, MESH_NAME: name, XDG_STATE_HOME: stateDir, XDG_CONFIG_HOME: stateDir, MESH_LOG: process.env.MESH_LOG ?? 'warn' },
    })
    const peer = new LspPeer(child, folder, name)
    child.on('exit', (code, signal) => {
      peer.exited = true
      for (const { reject } of peer.pending.values()) reject(new Error(`mesh-proxy lsp exited (${code ?? signal})`))
      peer.pending.clear()
      onExit?.(code, signal)
    })
    const uri = pathToFileURL(folder).href
    const init = await peer.request('initialize', {
      processId: process.pid,
      rootUri: uri,
      workspaceFolders: [{ uri, name: 'room' }],
      capabilities: { workspace: { applyEdit: true, workspaceFolders: true }, general: { positionEncodings: ['utf-16'] } },
      clientInfo: { name: 'mesh-e2e-lsp-peer' },
    })
    if (!init?.capabilities?.experimental?.mesh) throw new Error(`mesh-proxy lsp did not say it speaks mesh: ${JSON.stringify(init).slice(0, 300)}`)
    peer.notify('initialized', {})
    return peer
  }

  constructor (child, folder, name) {
    this.child = child
    this.folder = folder
    this.name = name
    this.nextId = 1
    this.pending = new Map()
    /** Every notification received, oldest first: `{ method, params }`. */
    this.notifications = []
    this.waiters = new Set()
    this.exited = false
    this.buf = Buffer.alloc(0)
    child.stdout.on('data', (d) => this.onData(d))
  }

  /** Joins the room of `link` into the peer's folder, as the plugins' "join" command does. */
  async join (link) {
    return this.request('mesh/join', { link })
  }

  request (method, params) {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`${method} got no answer within ${REQUEST_TIMEOUT_MS} ms`))
      }, REQUEST_TIMEOUT_MS)
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v) },
        reject: (e) => { clearTimeout(timer); reject(e) },
      })
      this.write({ jsonrpc: '2.0', id, method, params })
    })
  }

  notify (method, params) {
    this.write({ jsonrpc: '2.0', method, params })
  }

  /** The notifications of `method` whose params satisfy `pred`. */
  received (method, pred = () => true) {
    return this.notifications.filter(n => n.method === method && pred(n.params)).map(n => n.params)
  }

  /** Waits until `cond()` holds, checking again on every message from the proxy. */
  until (what, cond, timeoutMs) {
    const v = cond()
    if (v) return Promise.resolve(v)
    return new Promise((resolve, reject) => {
      const waiter = () => {
        const r = cond()
        if (!r) return
        this.waiters.delete(waiter)
        clearTimeout(timer)
        resolve(r)
      }
      const timer = setTimeout(() => {
        this.waiters.delete(waiter)
        reject(new Error(`${this.name}: timed out waiting for ${what}`))
      }, timeoutMs)
      this.waiters.add(waiter)
    })
  }

  /** Asks the proxy to shut down and exit, as an editor does when it closes. */
  async stop () {
    if (this.exited) return
    await this.request('shutdown', null).catch(() => {})
    this.notify('exit', null)
    await new Promise((resolve) => {
      if (this.exited) return resolve()
      const timer = setTimeout(() => { this.child.kill('SIGKILL'); resolve() }, 5000)
      this.child.once('exit', () => { clearTimeout(timer); resolve() })
    })
  }

  write (msg) {
    if (this.exited) throw new Error('mesh-proxy lsp has exited')
    const body = Buffer.from(JSON.stringify(msg), 'utf8')
    this.child.stdin.write(`Content-Length: ${body.length}\r\n\r\n`)
    this.child.stdin.write(body)
  }

  onData (data) {
    this.buf = Buffer.concat([this.buf, data])
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const m = /Content-Length: *(\d+)/i.exec(this.buf.subarray(0, end).toString('ascii'))
      if (!m) throw new Error(`mesh-proxy lsp wrote a header without Content-Length: ${this.buf.subarray(0, end)}`)
      const len = Number(m[1])
      if (len > MAX_MESSAGE_BYTES) throw new Error(`mesh-proxy lsp wrote a message of ${len} bytes`)
      if (this.buf.length < end + 4 + len) return
      const msg = JSON.parse(this.buf.subarray(end + 4, end + 4 + len).toString('utf8'))
      this.buf = this.buf.subarray(end + 4 + len)
      this.onMessage(msg)
    }
  }

  onMessage (msg) {
    if (msg.id !== undefined && msg.method === undefined) {
      const p = this.pending.get(msg.id)
      if (!p) return
      this.pending.delete(msg.id)
      if (msg.error) p.reject(new Error(`${msg.error.message} (${msg.error.code})`))
      else p.resolve(msg.result)
    } else if (msg.id !== undefined) {
      // A request from the proxy. The peer opens no documents, so it has no buffers to edit
      // or hash: it refuses edits (the proxy then keeps the folder on disk itself) and
      // answers everything else (progress, registrations) with an empty result.
      const result = msg.method === 'workspace/applyEdit' ? { applied: false, failureReason: 'the test peer has no buffers' } : null
      this.write({ jsonrpc: '2.0', id: msg.id, result })
    } else {
      this.notifications.push({ method: msg.method, params: msg.params })
    }
    for (const w of [...this.waiters]) w()
  }
}

/** A folder and a state directory for a peer under `tmp`. */
export function peerDirs (tmp, name) {
  return { folder: join(tmp, `${name}-folder`), stateDir: join(tmp, `${name}-state`) }
}
