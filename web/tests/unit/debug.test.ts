import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DapClient, DapError, MAX_PENDING_REQUESTS, type Timers } from '../../src/debug/client.js'
import { MAX_DAP_ITEMS, MAX_DAP_TEXT, list, readDapMessage, readFrame, readVariable } from '../../src/debug/dap.js'
import { PathMap } from '../../src/debug/paths.js'
import { BreakpointStore, MAX_BREAKPOINTS_PER_FILE } from '../../src/debug/breakpointStore.js'
import { DebugSession } from '../../src/debug/session.js'
import type { ClientMessage, Role, ServerMessage } from '../../src/net/messages.js'

/** Timers that fire only when the test says so. */
function manualTimers (): Timers & { fire: () => void; live: () => number } {
  const timers = new Map<number, () => void>()
  let next = 1
  return {
    set: (fn) => { timers.set(next, fn); return next++ },
    clear: (t) => { timers.delete(t as number) },
    fire: () => { for (const [id, fn] of [...timers]) { timers.delete(id); fn() } },
    live: () => timers.size,
  }
}

const tick = () => new Promise(resolve => setImmediate(resolve))

test('responses are matched to their request by request_seq, whatever their order', async () => {
  const sent: Array<Record<string, unknown>> = []
  const client = new DapClient(m => { sent.push(m); return sent.length }, () => {})
  const a = client.request('threads')
  const b = client.request('scopes', { frameId: 7 })
  assert.deepEqual(sent.map(m => [m.seq, m.type, m.command]), [[1, 'request', 'threads'], [2, 'request', 'scopes']])
  client.receive({ seq: 40, type: 'response', request_seq: 2, command: 'scopes', success: true, body: { scopes: [] } })
  client.receive({ seq: 41, type: 'response', request_seq: 1, command: 'threads', success: true, body: { threads: [{ id: 1, name: 'main' }] } })
  assert.deepEqual(await b, { scopes: [] })
  assert.deepEqual(await a, { threads: [{ id: 1, name: 'main' }] })
  assert.equal(client.waiting(), 0)
})

test('a failed response rejects with the adapter\'s message', async () => {
  const client = new DapClient(() => 1, () => {})
  const p = client.request('next', { threadId: 1 })
  client.receive({ type: 'response', request_seq: 1, command: 'next', success: false, message: 'readers may inspect the program but not control it' })
  await assert.rejects(p, (e: unknown) => e instanceof DapError && /readers may inspect/.test(e.message))
})

test('an unanswered request times out, naming the command', async () => {
  const timers = manualTimers()
  const client = new DapClient(() => 1, () => {}, 1000, timers)
  const p = client.request('stackTrace')
  timers.fire()
  await assert.rejects(p, /did not answer stackTrace within 1 s/)
  assert.equal(client.waiting(), 0)
})

test('a request the socket cannot take, or the server refuses, fails at once with why', async () => {
  const offline = new DapClient(() => null, () => {})
  await assert.rejects(offline.request('threads'), /not connected to the room/)
  const tooBig = new DapClient(() => { throw new Error('this message is 70000 bytes; the server takes at most 65536') }, () => {})
  await assert.rejects(tooBig.request('evaluate'), /at most 65536/)
  const timers = manualTimers()
  const refusing = new DapClient(() => 77, () => {}, 1000, timers)
  const p = refusing.request('threads')
  assert.equal(refusing.refused(76, 'not ours'), false)
  assert.equal(refusing.refused(77, 'no debug session abc in this room'), true)
  await assert.rejects(p, /no debug session abc/)
  assert.equal(timers.live(), 0, 'the timer of a settled request is cleared')
})

test('closing fails every waiting request and every later one', async () => {
  const client = new DapClient(() => 1, () => {})
  const p = client.request('continue')
  client.close('the debug session has ended')
  await assert.rejects(p, /has ended/)
  await assert.rejects(client.request('threads'), /has ended/)
})

test('pending requests are bounded', async () => {
  const client = new DapClient(() => 1, () => {})
  const waiting = Array.from({ length: MAX_PENDING_REQUESTS }, () => client.request('threads').catch(() => {}))
  await assert.rejects(client.request('threads'), /still unanswered/)
  client.close('done')
  await Promise.all(waiting)
})

test('events are dispatched; stray responses and other shapes are dropped', () => {
  const events: string[] = []
  const client = new DapClient(() => 1, e => events.push(e.event))
  client.receive({ type: 'event', event: 'stopped', body: { reason: 'breakpoint', threadId: 1 } })
  client.receive({ type: 'response', request_seq: 99, success: true })
  client.receive({ type: 'request', seq: 1, command: 'runInTerminal' })
  client.receive('nonsense')
  client.receive(null)
  assert.deepEqual(events, ['stopped'])
})

test('untrusted DAP shapes are read bounded, and entries of another shape left out', () => {
  assert.equal(readDapMessage({ type: 'response', request_seq: -1 }), null)
  assert.equal(readDapMessage([]), null)
  const long = 'x'.repeat(MAX_DAP_TEXT + 100)
  const v = readVariable({ name: 'big', value: long, variablesReference: 'five' })
  assert.ok(v && v.value.length <= MAX_DAP_TEXT + 1 && v.variablesReference === 0)
  assert.equal(readVariable({ value: 'no name' }), null)
  const frame = readFrame({ id: 3, name: 'main', line: 7, source: { path: '/work/main.py' } })
  assert.deepEqual(frame, { id: 3, name: 'main', path: '/work/main.py', line: 7, column: 0 })
  assert.equal(readFrame({ id: 'x' }), null)
  const many = list(Array.from({ length: MAX_DAP_ITEMS + 5 }, (_, i) => ({ name: `v${i}`, value: '1' })), readVariable)
  assert.equal(many.items.length, MAX_DAP_ITEMS)
  assert.equal(many.cut, true)
  assert.deepEqual(list({ not: 'a list' }, readVariable), { items: [], cut: false })
})

test('paths map through the aliases, and a room file an alias hides is not in the program', () => {
  const paths = new PathMap('/work', { '/work/main.py': 'debugme.py' })
  assert.equal(paths.toContainer('debugme.py'), '/work/main.py')
  assert.equal(paths.toContainer('src/util.py'), '/work/src/util.py')
  assert.equal(paths.toContainer('main.py'), null)
  assert.equal(paths.toRoom('/work/main.py'), 'debugme.py')
  assert.equal(paths.toRoom('/work/src/util.py'), 'src/util.py')
  assert.equal(paths.toRoom('/usr/lib/python3.11/runpy.py'), null)
  assert.equal(paths.toRoom('/work/../etc/passwd'), null)
  assert.equal(paths.toRoom('/workshop/a.py'), null)
})

test('own breakpoints toggle, move with edits, and are bounded; merged lines of others show apart', () => {
  const store = new BreakpointStore()
  const changed: string[] = []
  store.onChange(p => changed.push(p))
  assert.equal(store.toggle('a.py', 3), true)
  assert.equal(store.toggle('a.py', 1), true)
  store.setMerged('a.py', [3, 9, 9, -2])
  assert.deepEqual(store.marks('a.py'), { own: [1, 3], others: [9], current: null })
  assert.equal(store.toggle('a.py', 3), false)
  store.move('a.py', [2])
  assert.deepEqual(store.marks('a.py').own, [2])
  store.setCurrent({ path: 'a.py', line: 9 })
  assert.equal(store.marks('a.py').current, 9)
  assert.equal(store.marks('b.py').current, null)
  store.clearMerged()
  assert.deepEqual(store.marks('a.py').others, [])
  assert.equal(store.toggle('a.py', 0), 'no line 0')
  for (let l = 100; store.ownLines('c.py').length < MAX_BREAKPOINTS_PER_FILE; l++) store.toggle('c.py', l)
  assert.match(String(store.toggle('c.py', 1)), /at most 500 breakpoints/)
  assert.ok(changed.includes('a.py') && changed.includes('c.py'))
})

/** A session wired to a fake room: what it sends, and a way to answer. */
function harness (role: Role = 'writer', connId = 1) {
  const sent: Array<{ id: number; msg: ClientMessage }> = []
  const notices: string[] = []
  const stops: Array<string | null> = []
  let id = 0
  const room = { send: (msg: ClientMessage) => { sent.push({ id: ++id, msg }); return id }, connId: () => connId, role: () => role }
  const store = new BreakpointStore()
  // Manual timers: requests a test leaves unanswered must not keep Node waiting.
  const session = new DebugSession(room, store, t => notices.push(t), f => stops.push(f?.roomPath ?? null), manualTimers())
  const dapSent = () => sent.filter(s => s.msg.type === 'dap').map(s => (s.msg as { message: Record<string, unknown> }).message)
  /** Answers the last DAP request of `command` with `body`. */
  const answer = (command: string, body: Record<string, unknown>, success = true) => {
    const req = dapSent().filter(m => m.command === command).pop()
    assert.ok(req, `no ${command} request was sent`)
    session.receive({ type: 'dap', debug_id: 'd1', message: { seq: 100, type: 'response', request_seq: req.seq, command, success, body } })
  }
  const joined = (by = connId): ServerMessage => ({
    type: 'debug_joined', debug_id: 'd1', path: 'debugme.py', language: 'python', by, capabilities: { supportsTerminateRequest: true },
    work_dir: '/work', aliases: { '/work/main.py': 'debugme.py' }, responding_to: sent[sent.length - 1]?.id,
  })
  return { session, store, sent, notices, stops, dapSent, answer, joined }
}

test('attached, the page sends its breakpoints per file in container paths, then configurationDone', async () => {
  const h = harness()
  h.store.toggle('debugme.py', 7)
  h.store.toggle('main.py', 2)
  h.session.start('debugme.py', 'python')
  assert.deepEqual(h.sent[0].msg, { type: 'debug_start', path: 'debugme.py', language: 'python' })
  h.session.receive(h.joined())
  assert.equal(h.session.phase.kind, 'attached')
  h.session.receive({ type: 'dap', debug_id: 'd1', message: { seq: 1, type: 'event', event: 'initialized' } })
  await tick()
  const bp = h.dapSent().find(m => m.command === 'setBreakpoints')
  assert.deepEqual((bp?.arguments as Record<string, unknown>).source, { path: '/work/main.py', name: 'main.py' })
  assert.deepEqual((bp?.arguments as Record<string, unknown>).breakpoints, [{ line: 7 }])
  // main.py is hidden by the entry file's alias: its breakpoints wait, and the user is told.
  assert.ok(h.notices.some(n => /main\.py is not part of the program/.test(n)))
  h.answer('setBreakpoints', { breakpoints: [{ verified: true, line: 7 }] })
  await tick()
  assert.ok(h.dapSent().some(m => m.command === 'configurationDone'))
})

test('a stop fetches threads, the stack and the top frame\'s variables, and marks the line', async () => {
  const h = harness()
  h.session.start('debugme.py')
  h.session.receive(h.joined())
  h.session.receive({ type: 'dap', debug_id: 'd1', message: { type: 'event', event: 'stopped', body: { reason: 'breakpoint', threadId: 1 } } })
  await tick()
  h.answer('threads', { threads: [{ id: 1, name: 'MainThread' }] })
  await tick()
  h.answer('stackTrace', { stackFrames: [{ id: 5, name: 'main', line: 7, source: { path: '/work/main.py' } }, { id: 6, name: '<module>', line: 14, source: { path: '/usr/lib/runpy.py' } }], totalFrames: 2 })
  await tick()
  assert.deepEqual(h.session.frames.map(f => f.roomPath), ['debugme.py', null])
  assert.deepEqual(h.stops, ['debugme.py'])
  assert.equal(h.store.marks('debugme.py').current, 7)
  h.answer('scopes', { scopes: [{ name: 'Locals', variablesReference: 10 }, { name: 'Globals', variablesReference: 11, expensive: true }] })
  await tick()
  h.answer('variables', { variables: [{ name: 'total', value: '0', variablesReference: 0 }] })
  await tick()
  assert.deepEqual(h.session.scopes.map(s => s.variables?.map(v => v.name) ?? null), [['total'], null])
  // Stepping resumes: the stop and its line are cleared until the next one.
  const step = h.session.control('next')
  h.answer('next', {})
  await step
  assert.equal(h.session.stopped, null)
  assert.equal(h.store.marks('debugme.py').current, null)
})

test('answers made stale by a newer stop are dropped, not shown', async () => {
  const h = harness()
  h.session.start('debugme.py')
  h.session.receive(h.joined())
  const stop = { type: 'dap' as const, debug_id: 'd1', message: { type: 'event', event: 'stopped', body: { reason: 'step', threadId: 1 } } }
  h.session.receive(stop)
  await tick()
  const firstThreads = h.dapSent().filter(m => m.command === 'threads')[0]
  h.session.receive(stop)
  await tick()
  // The first stop's answer arrives late: it must not drive a stack request of its own.
  h.session.receive({ type: 'dap', debug_id: 'd1', message: { type: 'response', request_seq: firstThreads.seq, command: 'threads', success: true, body: { threads: [{ id: 1, name: 'old' }] } } })
  await tick()
  assert.equal(h.dapSent().filter(m => m.command === 'stackTrace').length, 0)
  h.answer('threads', { threads: [{ id: 1, name: 'new' }] })
  await tick()
  assert.equal(h.dapSent().filter(m => m.command === 'stackTrace').length, 1)
  assert.deepEqual(h.session.threads.map(t => t.name), ['new'])
})

test('readers join and inspect, but neither steer nor set breakpoints', async () => {
  const h = harness('reader', 4)
  h.session.receive({ type: 'debug_started', debug_id: 'd1', path: 'debugme.py', language: 'python', by: 1 })
  assert.equal(h.session.phase.kind, 'offered')
  h.session.start('debugme.py')
  assert.equal(h.sent.length, 0)
  h.session.join()
  assert.deepEqual(h.sent[0].msg, { type: 'debug_start', path: '' })
  h.session.receive(h.joined(1))
  h.session.toggleBreakpoint('debugme.py', 3)
  assert.deepEqual(h.store.ownLines('debugme.py'), [])
  h.session.receive({ type: 'dap', debug_id: 'd1', message: { type: 'event', event: 'initialized' } })
  await tick()
  assert.deepEqual(h.dapSent().map(m => m.command), ['configurationDone'])
  await h.session.control('next')
  assert.ok(!h.dapSent().some(m => m.command === 'next'))
  assert.equal(h.session.canEnd(), false)
  assert.ok(h.notices.some(n => /inspect the program but not control it/.test(n)))
  assert.ok(h.notices.some(n => /Readers cannot set breakpoints/.test(n)))
})

test('the session\'s end fails what waits, clears the room\'s marks, and says how it ended', async () => {
  const h = harness()
  h.session.start('debugme.py')
  h.session.receive(h.joined())
  h.session.receive({ type: 'debug_breakpoints', debug_id: 'd1', path: 'debugme.py', lines: [9] })
  assert.deepEqual(h.store.marks('debugme.py').others, [9])
  const pending = h.session.variables(10)
  h.session.receive({ type: 'debug_ended', debug_id: 'd1', exit_code: 0, error: null })
  await assert.rejects(pending, /has ended/)
  assert.equal(h.session.phase.kind, 'idle')
  assert.deepEqual(h.session.ended, { exitCode: 0, error: null })
  assert.deepEqual(h.session.threads, [])
  assert.deepEqual(h.store.marks('debugme.py').others, [])
})

test('a refused start goes back to idle and says why; a lost connection rejoins (never starts)', () => {
  const h = harness()
  h.session.start('main.c')
  h.session.refused(h.sent[0].id, 'Docker is not available')
  assert.equal(h.session.phase.kind, 'idle')
  assert.ok(h.notices.some(n => /Could not start debugging: Docker/.test(n)))
  h.session.start('debugme.py')
  h.session.receive(h.joined())
  h.session.disconnected()
  assert.equal(h.session.phase.kind, 'idle')
  h.session.reconnected()
  assert.deepEqual(h.sent[h.sent.length - 1].msg, { type: 'debug_start', path: '' })
})
