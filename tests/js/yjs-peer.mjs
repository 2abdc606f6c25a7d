// A stock Yjs client (the npm packages `yjs` and `y-websocket`, no mesh code) that joins a
// mesh room and proves interop both ways. Driven by server/tests/interop.rs:
//   node yjs-peer.mjs WS_BASE ROOM TOKEN
// 1. waits for "from rust" in files/shared.txt, 2. appends " from yjs 🎉" and publishes an
// awareness state, 3. waits for "rust again", 4. prints {"text": ...} and exits 0.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [base, room, token] = process.argv.slice(2)
const TIMEOUT_MS = 20000
const timer = setTimeout(() => {
  console.error('yjs-peer: timed out; text is', JSON.stringify(text()))
  process.exit(1)
}, TIMEOUT_MS)

const doc = new Y.Doc()
const provider = new WebsocketProvider(base, room, doc, { WebSocketPolyfill: WebSocket, params: { token } })
const files = doc.getMap('files')
const text = () => files.get('shared.txt')?.toString() ?? null

function until (pred) {
  return new Promise(resolve => {
    const check = () => { if (pred()) { doc.off('update', check); resolve() } }
    doc.on('update', check)
    check()
  })
}

await until(() => (text() ?? '').includes('from rust'))
const shared = files.get('shared.txt')
shared.insert(shared.length, ' from yjs 🎉')
provider.awareness.setLocalStateField('user', { name: 'node', color: '#00ff00' })
await until(() => (text() ?? '').includes('rust again'))
console.log(JSON.stringify({ text: text() }))
clearTimeout(timer)
provider.destroy()
process.exit(0)
