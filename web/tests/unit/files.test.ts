import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { createFile, deleteFile, filePaths, fileText, fileTree, filesOf, pathProblem, renameFile, renamesIn } from '../../src/room/files.js'

test('room paths follow the proxies\' rules', () => {
  for (const ok of ['main.py', 'src/a b/c.rs', 'ünï/𝄞.txt', '.gitignore', 'a/.github/x.yml']) assert.equal(pathProblem(ok), null, ok)
  for (const bad of ['', '/etc/passwd', 'a/../b', './a', 'a//b', 'a/', 'a\\b', '.git/config', 'x/.GIT/HEAD', '.mesh/state', 'a\u0000b', 'x'.repeat(2000)]) {
    assert.notEqual(pathProblem(bad), null, bad)
  }
})

test('a file is created once, and never over a folder or under a file', () => {
  const doc = new Y.Doc()
  assert.deepEqual(createFile(doc, 'src/a.py', 'print(1)\n'), { ok: true })
  assert.equal(fileText(doc, 'src/a.py')?.toString(), 'print(1)\n')
  assert.equal(createFile(doc, 'src/a.py').ok, false)
  assert.equal(createFile(doc, 'src').ok, false)
  assert.equal(createFile(doc, 'src/a.py/b').ok, false)
  assert.equal(createFile(doc, '../x').ok, false)
  assert.deepEqual(filePaths(doc), ['src/a.py'])
})

test('a rename is one change that moves the text, and reads as a rename', () => {
  const doc = new Y.Doc()
  createFile(doc, 'a.py', 'héllo 👋')
  const seen: Array<Map<string, string>> = []
  filesOf(doc).observe(e => seen.push(renamesIn(e, doc)))
  assert.deepEqual(renameFile(doc, 'a.py', 'b/c.py'), { ok: true })
  assert.equal(seen.length, 1)
  assert.deepEqual([...seen[0]], [['a.py', 'b/c.py']])
  assert.equal(fileText(doc, 'b/c.py')?.toString(), 'héllo 👋')
  assert.equal(fileText(doc, 'a.py'), null)
  createFile(doc, 'd.py')
  assert.equal(renameFile(doc, 'd.py', 'b/c.py').ok, false, 'never over another file')
  assert.equal(renameFile(doc, 'gone.py', 'x.py').ok, false)
})

test('a delete removes the file; a second one says it is gone', () => {
  const doc = new Y.Doc()
  createFile(doc, 'a.py')
  assert.deepEqual(deleteFile(doc, 'a.py'), { ok: true })
  assert.equal(deleteFile(doc, 'a.py').ok, false)
})

test('entries that are not text are not files', () => {
  const doc = new Y.Doc()
  filesOf(doc).set('weird', 42)
  assert.deepEqual(filePaths(doc), [])
  assert.equal(fileText(doc, 'weird'), null)
})

test('the tree lists folders first, each level sorted', () => {
  const t = fileTree(['z.py', 'src/b.rs', 'src/a/x.rs', 'a.py'])
  assert.deepEqual(t.folders.map(f => f.path), ['src'])
  assert.deepEqual(t.files.map(f => f.name), ['a.py', 'z.py'])
  assert.deepEqual(t.folders[0].folders.map(f => f.path), ['src/a'])
  assert.deepEqual(t.folders[0].files.map(f => f.path), ['src/b.rs'])
})
