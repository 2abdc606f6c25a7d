// The rules of running programs in the browser that need no browser: the rings between the
// page and the worker, output limits and batching, the worker's messages read as untrusted,
// console formatting and require's resolution.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { createRing, RingReader, RingWriter, StdinFeeder } from '../../src/run/local-ring.js'
import {
  cutToBytes, encodeRecords, FLUSH_BYTES, FLUSH_MS, MAX_RECORD_BYTES, OutputBatcher, OutputMeter, RecordDecoder, utf8Length,
  type OutputChunk,
} from '../../src/run/local-output.js'
import { MAX_CHUNKS_PER_MESSAGE, parseStartMessage, parseWorkerMessage } from '../../src/run/local-protocol.js'
import { format, inspect } from '../../src/run/local-format.js'
import { normalizePath, resolveRequire, wrapModule } from '../../src/run/local-modules.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

test('the ring hands over bytes in order across its wrap, and EOF only after the last byte', () => {
  const ring = createRing(8)
  const w = new RingWriter(ring)
  const r = new RingReader(ring)
  const into = new Uint8Array(8)
  assert.equal(r.tryRead(into), 'empty')
  assert.equal(w.write(enc.encode('abcdef')), 6)
  assert.equal(r.tryRead(into.subarray(0, 4)), 4)
  assert.equal(dec.decode(into.subarray(0, 4)), 'abcd')
  // 2 bytes wait; 6 more fit, across the end of the buffer.
  assert.equal(w.write(enc.encode('ghijklmn')), 6)
  assert.equal(w.write(enc.encode('z')), 0, 'a full ring takes nothing')
  w.close()
  assert.equal(r.tryRead(into), 8)
  assert.equal(dec.decode(into), 'efghijkl')
  assert.equal(r.read(into), 0, 'closed and empty: EOF, without waiting')
  assert.equal(r.tryRead(into), 'eof')
})

test('typed text longer than the ring waits in the page and follows as the program reads; EOF comes after all of it', () => {
  const ring = createRing(4)
  const feeder = new StdinFeeder(new RingWriter(ring))
  const r = new RingReader(ring)
  feeder.push('héllo\n', true)
  assert.equal(feeder.waiting, 3, 'é is two bytes: 7 typed, 4 in the ring')
  const got: number[] = []
  const into = new Uint8Array(16)
  for (;;) {
    const n = r.tryRead(into)
    if (n === 'eof') break
    if (n === 'empty') { feeder.pump(); continue }
    got.push(...into.subarray(0, n))
  }
  assert.equal(dec.decode(new Uint8Array(got)), 'héllo\n')
  feeder.push('too late')
  assert.equal(feeder.waiting, 0, 'nothing is taken after EOF')
})

test('a reader blocked in read() wakes for typed text, and a writer blocked on a full ring wakes when it is read', { timeout: 20_000 }, async () => {
  const stdin = createRing(16)
  const out = createRing(4)
  const worker = new Worker(new URL('./local-ring-worker.js', import.meta.url), { workerData: { stdin, out } })
  const failed = new Promise<never>((_, reject) => worker.on('error', reject))
  const feeder = new StdinFeeder(new RingWriter(stdin))
  const r = new RingReader(out)
  const text = 'line one\nline two ✓\n'
  feeder.push(text, true)
  const got: number[] = []
  const into = new Uint8Array(4)
  for (;;) {
    const n = r.tryRead(into)
    if (n === 'eof') break
    if (n === 'empty') {
      feeder.pump()
      await Promise.race([r.changed(), failed])
      continue
    }
    got.push(...into.subarray(0, n))
  }
  assert.equal(dec.decode(new Uint8Array(got)), text)
  await worker.terminate()
})

test('utf8 lengths and cuts count bytes as TextEncoder writes them and never split a character', () => {
  for (const s of ['', 'a', 'é', '✓', '😀', 'a😀b', '\ud800x', 'x\udc00']) assert.equal(utf8Length(s), enc.encode(s).length, JSON.stringify(s))
  assert.equal(cutToBytes('a😀b', 4), 'a')
  assert.equal(cutToBytes('a😀b', 5), 'a😀')
  assert.equal(cutToBytes('éé', 3), 'é')
})

test('output past the limit is cut at the limit and nothing more passes', () => {
  const m = new OutputMeter(10)
  assert.equal(m.take('12345'), '12345')
  assert.equal(m.take('678é0'), '678é', 'é and 0 would make 11 bytes: é fits, 0 does not')
  assert.ok(m.over)
  assert.equal(m.take('x'), '')
  assert.equal(m.bytes, 10)
})

test('without the ring, the first output goes at once and later output waits for the batch to be due', () => {
  const sent: OutputChunk[][] = []
  const b = new OutputBatcher(c => sent.push(c), 1 << 20)
  assert.equal(b.write('stdout', 'first\n', 1000), 'due', 'a line before a long computation is not held back')
  b.flush(1000)
  for (let i = 0; i < 10; i++) assert.equal(b.write('stdout', 'x', 1001 + i), 'wait', 'a character at a time is batched')
  assert.equal(b.write('stderr', 'e', 1011), 'wait')
  assert.equal(b.write('stderr', 'f', 1000 + FLUSH_MS), 'due')
  b.flush(1000 + FLUSH_MS)
  assert.deepEqual(sent, [[{ stream: 'stdout', text: 'first\n' }], [{ stream: 'stdout', text: 'x'.repeat(10) }, { stream: 'stderr', text: 'ef' }]])
  b.write('stdout', 'y'.repeat(FLUSH_BYTES), 1000 + FLUSH_MS + 1)
  assert.ok(b.due(1000 + FLUSH_MS + 1), 'a large batch goes whatever its age')
  assert.equal(new OutputBatcher(() => {}, 3).write('stdout', 'abcd', 0), 'limit')
})

test('output records come back as the chunks printed, whatever the reads cut, multibyte text included', () => {
  const printed: OutputChunk[] = [
    { stream: 'stdout', text: 'héllo ' }, { stream: 'stdout', text: 'wörld 😀\n' },
    { stream: 'stderr', text: 'oops ✗\n' }, { stream: 'stdout', text: 'z'.repeat(MAX_RECORD_BYTES) + '€' },
  ]
  const bytes = new Uint8Array(printed.flatMap(c => encodeRecords(c.stream, c.text)).flatMap(r => [...r]))
  for (const step of [1, 3, 7, 4096, bytes.length]) {
    const d = new RecordDecoder()
    const got: OutputChunk[] = []
    for (let at = 0; at < bytes.length; at += step) {
      for (const c of d.push(bytes.subarray(at, at + step))) {
        const last = got[got.length - 1]
        if (last?.stream === c.stream) last.text += c.text
        else got.push({ ...c })
      }
    }
    assert.deepEqual(got, [
      { stream: 'stdout', text: 'héllo wörld 😀\n' }, { stream: 'stderr', text: 'oops ✗\n' },
      { stream: 'stdout', text: 'z'.repeat(MAX_RECORD_BYTES) + '€' },
    ], `reads of ${step} bytes`)
  }
  assert.ok(encodeRecords('stdout', 'z'.repeat(MAX_RECORD_BYTES) + '€').length === 2, 'a long text is split into bounded records')
})

test('a garbled output record is refused, never trusted', () => {
  assert.throws(() => new RecordDecoder().push(new Uint8Array([9, 1, 0, 0, 0, 65])), /garbled/)
  assert.throws(() => new RecordDecoder().push(new Uint8Array([1, 255, 255, 255, 127])), /garbled/)
})

test('the worker\'s messages are parsed into closed types; anything else is dropped', () => {
  assert.deepEqual(parseWorkerMessage({ type: 'exit', code: 3 }), { type: 'exit', code: 3 })
  assert.deepEqual(parseWorkerMessage({ type: 'started', extra: 1 }), { type: 'started' })
  assert.deepEqual(parseWorkerMessage({ type: 'output', chunks: [{ stream: 'stderr', text: 'x' }] }), { type: 'output', chunks: [{ stream: 'stderr', text: 'x' }] })
  assert.equal(parseWorkerMessage({ type: 'failed', error: 'e'.repeat(5000) })?.type, 'failed')
  for (const bad of [null, 'exit', { type: 'exit', code: 1.5 }, { type: 'exit', code: '0' }, { type: 'output', chunks: [{ stream: 'stdin', text: 'x' }] },
    { type: 'output', chunks: Array(MAX_CHUNKS_PER_MESSAGE + 1).fill({ stream: 'stdout', text: '' }) }, { type: 'eval', code: 'x' }]) {
    assert.equal(parseWorkerMessage(bad), null, JSON.stringify(bad)?.slice(0, 80))
  }
  assert.equal(parseStartMessage({ type: 'start', files: [['a', 1]], entry: 'a', outputLimitBytes: 1 }), null)
  assert.equal(parseStartMessage({ type: 'start', files: [['a', 'x']], entry: 'a', outputLimitBytes: 1 })?.stdin, null)
})

test('console.log formats as Node does for the common cases', () => {
  assert.equal(format(['a', 1, 'b']), 'a 1 b')
  assert.equal(format([{ a: 1, 'b-c': 'x', d: [1, 'two', { e: null }] }]), "{ a: 1, 'b-c': 'x', d: [ 1, 'two', { e: null } ] }")
  assert.equal(format(['%s is %d years and %i%%', 'Zoë', 42.5, 7.9]), 'Zoë is 42.5 years and 7%')
  assert.equal(format(['%j', { a: [1] }]), '{"a":[1]}')
  assert.equal(format([[], {}, undefined, null, -0, 10n, Symbol('s')]), '[] {} undefined null -0 10n Symbol(s)')
  assert.equal(format([new Map([['k', 1]]), new Set(['v'])]), "Map(1) { 'k' => 1 } Set(1) { 'v' }")
  assert.equal(format([{ a: { b: { c: { d: 1 } } } }]), '{ a: { b: { c: [Object] } } }')
  const loop: Record<string, unknown> = { name: 'loop' }
  loop.self = loop
  assert.equal(inspect(loop), "{ name: 'loop', self: [Circular] }")
  assert.equal(format([function named () {}, () => {}, class K {}]), '[Function: named] [Function (anonymous)] [class K]')
  assert.equal(format([Array.from({ length: 102 }, (_, i) => i)]).endsWith('99, ... 2 more items ]'), true)
})

test('require resolves the room\'s files as Node resolves relative paths, and nothing outside the room', () => {
  const files = new Set(['main.js', 'lib/greet.js', 'lib/data.json', 'lib/pkg/index.js', 'lib/b.cjs'])
  const has = (p: string) => files.has(p)
  assert.equal(resolveRequire('./lib/greet', 'main.js', has), 'lib/greet.js')
  assert.equal(resolveRequire('./lib/greet.js', 'main.js', has), 'lib/greet.js')
  assert.equal(resolveRequire('./data.json', 'lib/greet.js', has), 'lib/data.json')
  assert.equal(resolveRequire('./data', 'lib/greet.js', has), 'lib/data.json')
  assert.equal(resolveRequire('./b', 'lib/greet.js', has), 'lib/b.cjs')
  assert.equal(resolveRequire('./pkg', 'lib/greet.js', has), 'lib/pkg/index.js')
  assert.equal(resolveRequire('../main', 'lib/greet.js', has), 'main.js')
  assert.equal(resolveRequire('/main.js', 'lib/greet.js', has), 'main.js')
  assert.equal(resolveRequire('../../main', 'lib/greet.js', has), null, 'out of the room')
  assert.equal(resolveRequire('lodash', 'main.js', has), null, 'a package is not a room file')
  assert.equal(resolveRequire('./missing', 'main.js', has), null)
  assert.equal(normalizePath('a/./b/../c'), 'a/c')
  // The wrapper keeps the module's first line on line 1.
  assert.equal(wrapModule('m.js', 'x\ny').split('\n')[1], 'y')
})
