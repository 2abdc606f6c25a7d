// A stand-in for a run's worker in the ring test (local-run.test.ts): it blocks in read()
// for each piece of stdin and echoes it into a small output ring two bytes at a time,
// blocking while the ring is full; then closes it.
import { parentPort, workerData } from 'node:worker_threads'
import { RingReader, RingWriter } from '../../src/run/local-ring.js'

const { stdin, out } = workerData as { stdin: SharedArrayBuffer; out: SharedArrayBuffer }
const r = new RingReader(stdin)
const w = new RingWriter(out)
const buf = new Uint8Array(16)
for (let n = r.read(buf); n > 0; n = r.read(buf)) {
  for (let i = 0; i < n; i += 2) w.writeAllBlocking(buf.slice(i, Math.min(n, i + 2)))
}
w.close()
parentPort?.postMessage('done')
