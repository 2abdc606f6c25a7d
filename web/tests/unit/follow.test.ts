import { test } from 'node:test'
import assert from 'node:assert/strict'
import { followPlace } from '../../src/ui/follow.js'
import { readPresence } from '../../src/room/presence.js'

test('following goes to the file in front of them, at the lines they see', () => {
  const s = readPresence({ view: { path: 'a.py', start_line: 40, end_line: 80 }, cursor: { path: 'a.py', anchor: 3, head: 9 } })
  assert.deepEqual(followPlace(s), { path: 'a.py', line: 40, head: 9 })
})

test('a cursor in another file than the one in front is not where they look', () => {
  const s = readPresence({ view: { path: 'a.py', start_line: 0, end_line: 10 }, cursor: { path: 'b.py', anchor: 1, head: 1 } })
  assert.deepEqual(followPlace(s), { path: 'a.py', line: 0, head: null })
})

test('a client that publishes only its cursor is followed by its cursor', () => {
  assert.deepEqual(followPlace(readPresence({ cursor: { path: 'b.py', anchor: 1, head: 5 } })), { path: 'b.py', line: null, head: 5 })
  assert.equal(followPlace(readPresence({ user: { name: 'x' } })), null)
})
