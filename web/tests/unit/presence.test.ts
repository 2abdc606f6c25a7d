import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_REMOTE_SELECTIONS, clampCursors, cursorState, readPresence, remoteCursors, sameCursors, type RemoteCursor } from '../../src/room/presence.js'

test('a published cursor reads back in mesh shape, the primary selection first', () => {
  const cursor = cursorState('src/a.py', [{ anchor: 9, head: 9 }, { anchor: 3, head: 5 }], 1)
  assert.deepEqual(cursor, { path: 'src/a.py', anchor: 3, head: 5, selections: [[3, 5], [9, 9]] })
  const state = readPresence(JSON.parse(JSON.stringify({ user: { name: 'ada', color: '#ff8800' }, cursor })))
  assert.deepEqual(state.cursor, cursor)
  assert.deepEqual(state.user, { name: 'ada', color: '#ff8800' })
})

test('parts of another shape are left out, not errors', () => {
  // y-codemirror publishes relative positions as its cursor.
  const other = {
    user: { name: 'bo', color: '#30bced', colorLight: '#30bced33' },
    cursor: { anchor: { type: null, tname: 'a.txt', item: { client: 1, clock: 2 } }, head: {} },
    view: 'nonsense',
  }
  const state = readPresence(other)
  assert.equal(state.user?.name, 'bo')
  assert.equal(state.cursor, null)
  assert.equal(state.view, null)
  assert.deepEqual(readPresence(null), { user: null, cursor: null, view: null, following: null })
  assert.equal(readPresence({ following: 7 }).following, 7)
  assert.equal(readPresence({ following: 'ada' }).following, null)
  assert.equal(readPresence({ following: -1 }).following, null)
  assert.deepEqual(readPresence({ cursor: { path: 'a', anchor: -1, head: 0 } }).cursor, null)
  assert.deepEqual(readPresence({ cursor: { path: 'a', anchor: 1.5, head: 0 } }).cursor, null)
})

test('a cursor without a list of selections is its one selection', () => {
  assert.deepEqual(readPresence({ cursor: { path: 'a', anchor: 4, head: 2 } }).cursor?.selections, [[4, 2]])
})

test('untrusted states are bounded: names cut, selections capped, colours checked', () => {
  const many = Array.from({ length: 1000 }, (_, i) => [i, i])
  const s = readPresence({ user: { name: 'x'.repeat(10_000), color: 'red; background: url(x)' }, cursor: { path: 'a', anchor: 0, head: 0, selections: many } })
  assert.equal(s.user?.name.length, 64)
  assert.equal(s.user?.color, null)
  assert.equal(s.cursor?.selections.length, MAX_REMOTE_SELECTIONS)
})

test('remote cursors are the others in this file, named by their state or their participant', () => {
  const states = new Map<number, unknown>([
    [1, { user: { name: 'me' }, cursor: { path: 'a', anchor: 0, head: 0 } }],
    [2, { user: { name: 'ada', color: '#112233' }, cursor: { path: 'a', anchor: 1, head: 2 } }],
    [3, { cursor: { path: 'a', anchor: 5, head: 5 } }],
    [4, { user: { name: 'elsewhere' }, cursor: { path: 'b', anchor: 0, head: 0 } }],
  ])
  const known = (id: number) => (id === 3 ? { name: 'nvim-user', color: '#445566' } : undefined)
  const got = remoteCursors(states, 1, 'a', known)
  assert.deepEqual(got.map(c => [c.clientId, c.name, c.color, c.head]), [[2, 'ada', '#112233', 2], [3, 'nvim-user', '#445566', 5]])
})

test('cursors from awareness are kept inside the text', () => {
  const stale: RemoteCursor[] = [{ clientId: 2, name: 'ada', color: '#112233', head: 40, ranges: [[3, 40], [50, 50]] }]
  assert.deepEqual(clampCursors(stale, 10), [{ clientId: 2, name: 'ada', color: '#112233', head: 10, ranges: [[3, 10], [10, 10]] }])
})

test('cursors that draw the same are the same; any change of person, name, colour or place is not', () => {
  const ada: RemoteCursor = { clientId: 2, name: 'ada', color: '#112233', head: 5, ranges: [[5, 5]] }
  const bo: RemoteCursor = { clientId: 3, name: 'bo', color: '#445566', head: 0, ranges: [[0, 2]] }
  assert.ok(sameCursors([ada, bo], [{ ...ada, ranges: [[5, 5]] }, { ...bo }]))
  assert.ok(sameCursors([], []))
  assert.ok(!sameCursors([ada, bo], [bo, ada]))
  assert.ok(!sameCursors([ada], [ada, bo]))
  assert.ok(!sameCursors([ada], [{ ...ada, head: 6, ranges: [[6, 6]] }]))
  assert.ok(!sameCursors([ada], [{ ...ada, ranges: [[4, 5]] }]))
  assert.ok(!sameCursors([ada], [{ ...ada, ranges: [[5, 5], [7, 7]] }]))
  assert.ok(!sameCursors([ada], [{ ...ada, name: 'ada2' }]))
  assert.ok(!sameCursors([ada], [{ ...ada, color: '#000000' }]))
  assert.ok(!sameCursors([ada], [{ ...ada, clientId: 9 }]))
})
