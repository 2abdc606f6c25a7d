// An editor peer for the debug steps: a real `mesh-proxy dap`, started the way VS Code's
// extension and nvim-dap start it (`mesh-proxy dap --folder DIR`, DAP over stdin/stdout),
// driven by a small DAP client: Content-Length framing, requests with their own seq, answers
// matched by request_seq, every event kept so a test can wait for one that already came.

import { spawn } from 'node:child_process'
import { once } from 'node:events'

/** How long one request may wait for its answer (the hub answers within 30 s itself). */
const REQUEST_TIMEOUT_MS = 35_000

export class DapPeer {
  /**
   * @param bin the mesh-proxy binary
   * @param folder a folder `mesh-proxy join` put in the room
   * @param env the environment the join ran with (XDG dirs: where its session record is)
   */
  constructor (bin, folder, env, log = () => {}) {
    this.child = spawn(bin, ['dap', '--folder', folder], { stdio: ['pipe', 'pipe', 'pipe'], env })
    this.seq = 1
    this.pending = new Map()
    this.events = []
    this.waiters = []
    this.buf = Buffer.alloc(0)
    this.stderr = ''
    this.child.stdout.on('data', (chunk) => this.onData(chunk))
    this.child.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-8000)
      log(`mesh-proxy dap: ${String(chunk).trimEnd()}`)
    })
    this.child.on('exit', (code) => {
      for (const { reject } of this.pending.values()) reject(new Error(`mesh-proxy dap exited (${code}) before answering: ${this.stderr}`))
      this.pending.clear()
    })
  }

  onData (chunk) {
    this.buf = Buffer.concat([this.buf, chunk])
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const m = /Content-Length: *(\d+)/i.exec(this.buf.subarray(0, end).toString('latin1'))
      if (!m) throw new Error(`mesh-proxy dap sent a header without Content-Length: ${this.buf.subarray(0, end)}`)
      const len = Number(m[1])
      if (this.buf.length < end + 4 + len) return
      const msg = JSON.parse(this.buf.subarray(end + 4, end + 4 + len).toString('utf8'))
      this.buf = this.buf.subarray(end + 4 + len)
      this.onMessage(msg)
    }
  }

  onMessage (msg) {
    if (msg.type === 'response') {
      const p = this.pending.get(msg.request_seq)
      if (!p) return
      this.pending.delete(msg.request_seq)
      clearTimeout(p.timer)
      if (msg.success) p.resolve(msg)
      else p.reject(new Error(`${msg.command} failed: ${msg.message}`))
    } else if (msg.type === 'event') {
      this.events.push(msg)
      for (const w of [...this.waiters]) {
        if (w.pred(msg)) {
          this.waiters.splice(this.waiters.indexOf(w), 1)
          clearTimeout(w.timer)
          w.resolve(msg)
        }
      }
    }
  }

  /** Sends a request; resolves with the (successful) response. */
  request (command, args = {}) {
    const seq = this.seq++
    const body = Buffer.from(JSON.stringify({ seq, type: 'request', command, arguments: args }), 'utf8')
    this.child.stdin.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'latin1'), body]))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq)
        reject(new Error(`mesh-proxy dap did not answer ${command} within ${REQUEST_TIMEOUT_MS} ms`))
      }, REQUEST_TIMEOUT_MS)
      this.pending.set(seq, { resolve, reject, timer })
    })
  }

  /** The first event named `name` that matches `pred`, from the `since`-th event on (it may
   * have come already). */
  event (name, { since = 0, pred = () => true, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    const match = (e) => e.event === name && pred(e)
    const seen = this.events.slice(since).find(match)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const w = { pred: match, resolve }
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        reject(new Error(`mesh-proxy dap sent no ${name} event within ${timeoutMs} ms (events: ${this.events.map(e => e.event).join(', ')})`))
      }, timeoutMs)
      this.waiters.push(w)
    })
  }

  /** How many events came so far (a mark for {@link event}'s `since`). */
  mark () {
    return this.events.length
  }

  /** Ends the adapter: closing stdin is how an editor that goes away ends it. */
  async close () {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.stdin.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000)
    await once(this.child, 'exit')
    clearTimeout(timer)
  }
}
