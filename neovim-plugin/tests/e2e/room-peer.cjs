// A third participant for the Neovim end-to-end test: a stock Yjs client (the npm packages
// `yjs` and `y-websocket`, no mesh code) in the same room. It reads the room's copy of a
// file, and can type into it too, so the test compares the editors with the room itself.
//
//   MESH_JS_DIR=tests/js node room-peer.cjs WS_BASE ROOM TOKEN PATH SEED
//
// Commands on stdin, one per line; answers on stdout, one JSON object per line:
//   dump       -> {"text": <the file's text or null>, "synced": bool}
//   type N     -> inserts N short random strings at random places, then {"typed": N}
//   quit       -> exits
// Prints {"ready": true} once synced and the file exists in the room.
'use strict'
const path = require('path')
const { createRequire } = require('module')
const readline = require('readline')

// The packages live in the repository's tests/js (installed by `npm ci` there), not beside
// this file, so they are resolved from that folder.
const jsDir = process.env.MESH_JS_DIR
if (!jsDir) {
  console.error('room-peer: set MESH_JS_DIR to the folder with yjs and y-websocket installed')
  process.exit(2)
}
const load = createRequire(path.join(path.resolve(jsDir), 'package.json'))
const Y = load('yjs')
const { WebsocketProvider } = load('y-websocket')
const WebSocket = load('ws')

const [base, room, token, file, seedText] = process.argv.slice(2)
// Never outlive a test that forgot this process.
const LIFETIME_MS = 600000
setTimeout(() => {
  console.error('room-peer: lifetime over, exiting')
  process.exit(3)
}, LIFETIME_MS).unref()

// A small seeded generator (mulberry32), so a failing run replays with the same seed.
let seed = (Number(seedText) || 1) >>> 0
function random () {
  seed = (seed + 0x6d2b79f5) >>> 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const PIECES = ['y', 'js', ' ', 'é', '漢', '🎉', '\n', 'peer']

const doc = new Y.Doc()
const provider = new WebsocketProvider(base, room, doc, { WebSocketPolyfill: WebSocket, params: { token } })
provider.awareness.setLocalStateField('user', { name: 'yjs-peer', color: '#22aa22' })
const files = doc.getMap('files')
const text = () => files.get(file)
const say = obj => process.stdout.write(JSON.stringify(obj) + '\n')

let ready = false
function checkReady () {
  if (!ready && provider.synced && text()) {
    ready = true
    say({ ready: true })
  }
}
provider.on('sync', checkReady)
doc.on('update', checkReady)

// A random insertion point that does not split a UTF-16 surrogate pair (Y.Text indexes are
// UTF-16 code units).
function insertionPoint (s) {
  let i = Math.floor(random() * (s.length + 1))
  if (i > 0 && i < s.length) {
    const c = s.charCodeAt(i - 1)
    if (c >= 0xd800 && c <= 0xdbff) i -= 1
  }
  return i
}

async function type (n) {
  for (let k = 0; k < n; k++) {
    const t = text()
    if (t) {
      const piece = PIECES[Math.floor(random() * PIECES.length)]
      t.insert(insertionPoint(t.toString()), piece)
    }
    await new Promise(resolve => setTimeout(resolve, 10 + Math.floor(random() * 40)))
  }
  say({ typed: n })
}

readline.createInterface({ input: process.stdin }).on('line', line => {
  const [cmd, arg] = line.trim().split(/\s+/)
  if (cmd === 'dump') {
    say({ text: text() ? text().toString() : null, synced: provider.synced })
  } else if (cmd === 'type') {
    type(Number(arg) || 1)
  } else if (cmd === 'quit') {
    provider.destroy()
    process.exit(0)
  }
}).on('close', () => {
  provider.destroy()
  process.exit(0)
})
