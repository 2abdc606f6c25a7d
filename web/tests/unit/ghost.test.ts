import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GhostBoard, diffEdit } from '../../src/room/ghost.js'

test('an edit reads as kept, removed and added lines, and applying it gives the replacement', () => {
  const edit = { path: 'calc.py', search: 'def add(a, b):\n    return a - b\n', replace: 'def add(a, b):\n    # fixed\n    return a + b\n' }
  const diff = diffEdit(edit)
  assert.deepEqual(diff, [
    { op: ' ', text: 'def add(a, b):' },
    { op: '-', text: '    return a - b' },
    { op: '+', text: '    # fixed' },
    { op: '+', text: '    return a + b' },
  ])
  const after = diff.filter(l => l.op !== '-').map(l => l.text).join('\n') + '\n'
  assert.equal(after, edit.replace)
  assert.deepEqual(diffEdit({ path: 'new.py', search: '', replace: 'x = 1\n' }), [{ op: '+', text: 'x = 1' }])
  assert.deepEqual(diffEdit({ path: 'a', search: 'a\nb\na\n', replace: 'a\na\n' }), [
    { op: ' ', text: 'a' }, { op: '-', text: 'b' }, { op: ' ', text: 'a' },
  ])
})

test('a ghost state replaces the previous one and leaves with its connection', () => {
  const board = new GhostBoard()
  board.set(3, { requests: [], suggestions: [] })
  board.set(3, { requests: [{ id: 1, asker: 'ada', mode: 'explain', text: 'q', status: 'done', received_chars: 3, message: null }], suggestions: [] })
  assert.equal(board.all().length, 1)
  assert.equal(board.all()[0][1].requests[0].id, 1)
  assert.equal(board.left(4), false)
  assert.equal(board.left(3), true)
  assert.deepEqual(board.all(), [])
})
