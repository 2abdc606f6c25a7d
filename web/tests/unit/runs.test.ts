import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseServerMessage } from '../../src/net/messages.js'
import {
  MAX_OUTPUT_CHARS, MAX_RUNS_KEPT, RunBook, canStart, canStop, canType, formatDuration, queuedText,
  statusText, unavailableReason, whyNoStart, type HistoryRecord, type RoomView,
} from '../../src/run/model/runs.js'

const room: RoomView = { myConn: 7, nameOf: (c) => (c === 3 ? 'Ada' : undefined) }

/** A book fed server messages as the page would parse them. */
function book (now = () => 1000): RunBook {
  return new RunBook(now)
}
const msg = (m: Record<string, unknown>) => parseServerMessage(m)
const started = (id: string, by: number, extra: Record<string, unknown> = {}) =>
  msg({ type: 'run_started', run_id: id, path: 'main.py', language: 'python', by, ...extra })
const exited = (id: string, extra: Record<string, unknown> = {}) =>
  msg({ type: 'run_exited', run_id: id, stage: 'run', code: 0, duration_ms: 410, limit: null, error: null, ...extra })

function record (id: string, at: number, extra: Partial<HistoryRecord> = {}): HistoryRecord {
  return { run_id: id, path: 'main.py', language: 'python', by: 'Ada', started_at: at, stage: 'run', code: 0, duration_ms: 100, limit: null, error: null, stdout: 'out\n', stderr: '', ...extra }
}

test('a run started by anyone is listed with who started it, newest first', () => {
  const b = book()
  b.apply(started('r1', 3), room)
  b.apply(started('r2', 7), room)
  b.apply(started('r3', 0), room)
  b.apply(started('r4', 99), room)
  const names = Object.fromEntries(b.list().map(r => [r.id, r.byName]))
  assert.deepEqual(names, { r1: 'Ada', r2: 'you', r3: 'the REST API', r4: 'participant 99' })
})

test('the answer to this page\'s own request marks the run as ours', () => {
  const b = book()
  b.apply(started('r1', 7, { responding_to: 5 }), room, new Set([5]))
  b.apply(started('r2', 7, { responding_to: 6 }), room, new Set([5]))
  assert.equal(b.get('r1')?.mine, true)
  assert.equal(b.get('r2')?.mine, false)
})

test('a queued run says its place in the same words as the Rust queued_text', () => {
  const src = readFileSync(resolve(process.cwd(), '../protocol/src/messages.rs'), 'utf8')
  // Every limit the Rust function names reads the same here.
  const body = src.slice(src.indexOf('pub fn queued_text'), src.indexOf('#[cfg(test)]', src.indexOf('pub fn queued_text')))
  const arms = [...body.matchAll(/"(max_[a-z_]+)" => "([^"]+)"/g)]
  assert.ok(arms.length >= 4, 'the Rust function has its limit arms')
  for (const [, limit, why] of arms) assert.equal(queuedText(2, limit), `queued: 2nd in line, waiting for ${why}`)
  assert.equal(queuedText(2, 'max_runs'), 'queued: 2nd in line, waiting for a free run slot on this server (max_runs)')
  const ordinals = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111].map(n => queuedText(n, 'x').split(' ')[1])
  assert.deepEqual(ordinals, ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '22nd', '101st', '111th'])
  assert.equal(queuedText(1, 'something_new'), 'queued: 1st in line, waiting for something_new')

  const b = book()
  b.apply(msg({ type: 'run_queued', run_id: 'q', path: 'main.py', language: 'python', by: 3, position: 2, limit: 'max_runs' }), room)
  assert.equal(statusText(b.get('q')!, 0), 'queued: 2nd in line, waiting for a free run slot on this server (max_runs)')
  b.apply(started('q', 3), room)
  assert.equal(b.get('q')?.state, 'running')
  assert.equal(b.get('q')?.queue, null)
})

test('the end shows the exit code, the duration and the limit hit', () => {
  const b = book()
  for (const [id, end, want] of [
    ['ok', {}, 'exit 0 · 0.41 s'],
    ['fail', { code: 3, duration_ms: 12_345 }, 'exit 3 · 12.3 s'],
    ['slow', { code: 137, duration_ms: 10_000, limit: 'time' }, 'ended by the time limit · exit 137 · 10.0 s'],
    ['mem', { code: 137, limit: 'memory' }, 'ended by the memory limit · exit 137 · 0.41 s'],
    ['cc', { stage: 'compile', code: 1, duration_ms: 2000 }, 'compile failed · exit 1 · 2.00 s'],
    ['broken', { code: null, error: 'the run could not start: no image' }, 'could not run: the run could not start: no image'],
  ] as const) {
    b.apply(started(id, 3), room)
    b.apply(exited(id, end), room)
    assert.equal(statusText(b.get(id)!, 0), want, id)
  }
})

test('a stopped run says how long it ran by the page\'s clock (the server reports 0 ms)', () => {
  let now = 1000
  const b = book(() => now)
  b.apply(started('r', 7), room)
  now = 4200
  b.apply(exited('r', { code: null, duration_ms: 0, error: 'stopped' }), room)
  assert.equal(statusText(b.get('r')!, now), 'stopped after 3.20 s')
})

test('nothing is taken for a run after its end, nor for runs never announced', () => {
  const b = book()
  b.apply(started('r', 3), room)
  b.apply(exited('r'), room)
  assert.deepEqual(b.apply(msg({ type: 'run_output', run_id: 'r', stream: 'stdout', data: 'late' }), room), [])
  assert.deepEqual(b.apply(exited('r', { code: 9 }), room), [])
  assert.equal(b.get('r')?.end?.code, 0)
  assert.deepEqual(b.apply(msg({ type: 'run_output', run_id: 'nobody', stream: 'stdout', data: 'x' }), room), [])
  assert.equal(b.get('nobody'), undefined)
})

test('output kept per run is bounded: the oldest goes first and is counted', () => {
  const b = book()
  b.apply(started('r', 3), room)
  const piece = 'x'.repeat(64 * 1024)
  for (let i = 0; i < 6; i++) b.apply(msg({ type: 'run_output', run_id: 'r', stream: 'stdout', data: piece }), room)
  const run = b.get('r')!
  assert.ok(run.chars <= MAX_OUTPUT_CHARS)
  assert.equal(run.chars + run.droppedChars, 6 * piece.length)
  assert.equal(run.chunks.reduce((n, c) => n + c.data.length, 0), run.chars)
})

test('the runs kept are bounded; runs still going are never dropped', () => {
  let now = 0
  const b = book(() => ++now)
  b.apply(started('live', 3), room)
  for (let i = 0; i < MAX_RUNS_KEPT * 2; i++) {
    b.apply(started(`r${i}`, 3), room)
    b.apply(exited(`r${i}`), room)
  }
  assert.equal(b.list().length, MAX_RUNS_KEPT)
  assert.ok(b.get('live'), 'the running run is kept')
  assert.ok(b.get(`r${MAX_RUNS_KEPT * 2 - 1}`), 'the newest finished run is kept')
  assert.equal(b.get('r0'), undefined)
})

test('only writers start runs; only the starter or the host stops one; writers type while it runs', () => {
  const b = book()
  b.apply(started('ada', 3), room)
  b.apply(started('mine', 7), room)
  const [ada, mine] = [b.get('ada')!, b.get('mine')!]
  assert.equal(canStart('reader'), false)
  assert.equal(canStart('writer'), true)
  assert.equal(canStart('host'), true)
  assert.match(whyNoStart('reader')!, /read-only/)
  assert.equal(canStop(ada, 'writer', 7), false)
  assert.equal(canStop(ada, 'host', 7), true)
  assert.equal(canStop(mine, 'writer', 7), true)
  assert.equal(canStop(mine, 'reader', 7), true, 'a reader\'s own run (never started) is still its own')
  assert.equal(canType(ada, 'writer'), true)
  assert.equal(canType(ada, 'reader'), false)
  b.apply(exited('ada'), room)
  assert.equal(canType(ada, 'writer'), false)
  assert.equal(canStop(ada, 'host', 7), false)
})

test('the debug session\'s program shows as a run, but is stopped from the debug panel', () => {
  const b = book()
  b.apply(msg({ type: 'debug_started', debug_id: 'd', path: 'main.py', language: 'python', by: 7 }), room)
  b.apply(started('d', 7), room)
  assert.equal(b.get('d')?.debug, true)
  assert.equal(canStop(b.get('d')!, 'host', 7), false)
})

test('runs in this browser are ours to stop and type into, whatever the role', () => {
  const b = book()
  const run = b.startLocal('main.js', 'javascript', 'you')
  assert.equal(canStop(run, 'writer', 1), true)
  assert.equal(canType(run, 'writer'), true)
  b.append(run.id, 'stdout', 'hi\n')
  b.endLocal(run.id, { stage: 'run', code: 0, durationMs: 12, limit: null, error: null })
  assert.equal(b.get(run.id)?.state, 'exited')
  assert.equal(b.get(run.id)?.chunks[0].data, 'hi\n')
  assert.notEqual(b.startLocal('main.js', 'javascript', 'you').id, run.id)
})

test('a dropped connection marks the runs that were going; the history fills in their end', () => {
  const b = book()
  b.apply(started('r', 3), room)
  b.apply(msg({ type: 'run_output', run_id: 'r', stream: 'stdout', data: 'seen live\n' }), room)
  b.connectionLost()
  assert.equal(b.get('r')?.state, 'lost')
  b.addHistory([record('r', 5, { code: 4 })])
  const r = b.get('r')!
  assert.equal(r.state, 'exited')
  assert.equal(r.end?.code, 4)
  assert.equal(r.fromHistory, false)
  assert.equal(r.chunks.map(c => c.data).join(''), 'seen live\n', 'what was seen live stays')
})

test('the history adds past runs with their output, stdout then stderr, without doubling live ones', () => {
  const b = book()
  b.apply(started('live', 3), room)
  b.apply(exited('live'), room)
  const changes = b.addHistory([record('live', 9), record('old', 1, { stdout: 'Hello\n', stderr: 'warn\n', by: 'Bo' })])
  assert.deepEqual(changes.map(c => [c.kind, c.run.id]), [['added', 'old']])
  const old = b.get('old')!
  assert.deepEqual(old.chunks, [{ kind: 'stdout', data: 'Hello\n' }, { kind: 'stderr', data: 'warn\n' }])
  assert.equal(old.byName, 'Bo')
  assert.equal(old.fromHistory, true)
})

test('the server\'s "no runs here" is recognised from an error to our request or a failed start', () => {
  const mine = new Set([4])
  assert.equal(unavailableReason(msg({ type: 'error', code: 'unavailable', message: 'this server does not run programs', responding_to: 4 }), mine), 'this server does not run programs')
  assert.equal(unavailableReason(msg({ type: 'error', code: 'unavailable', message: 'x', responding_to: 5 }), mine), null, 'not ours')
  assert.equal(unavailableReason(msg({ type: 'error', code: 'forbidden', message: 'x', responding_to: 4 }), mine), null)
  const noDocker = 'the run could not start: runs are unavailable: Docker is unreachable: connection refused'
  assert.equal(unavailableReason(exited('r', { code: null, error: noDocker }), mine), noDocker)
  assert.equal(unavailableReason(exited('r', { code: null, error: 'stopped' }), mine), null)
})

test('durations read as people say them', () => {
  assert.equal(formatDuration(0), '0.00 s')
  assert.equal(formatDuration(9_999), '10.00 s')
  assert.equal(formatDuration(59_000), '59.0 s')
  assert.equal(formatDuration(125_000), '2 min 05 s')
})
