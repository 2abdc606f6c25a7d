import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_HELD_CHARS, TrueColorFilter, nearest256, rewriteSgr } from '../../src/run/model/ansi.js'
import { LineEditor, MAX_INPUT_CHARS, pieces } from '../../src/run/model/stdin.js'
import { MAX_HISTORY_RUNS, readHistory, readRecord } from '../../src/run/model/history.js'

const ESC = '\x1b'

test('24-bit colours become the nearest of the 256 colours, palette colours stay', () => {
  assert.equal(nearest256(255, 0, 0), 196)
  assert.equal(nearest256(0, 0, 0), 16)
  assert.equal(nearest256(255, 255, 255), 231)
  assert.equal(nearest256(128, 128, 128), 244, 'greys go to the grey ramp')
  assert.equal(rewriteSgr('38;2;255;0;0'), '38;5;196')
  assert.equal(rewriteSgr('1;48;2;0;0;0;4'), '1;48;5;16;4')
  assert.equal(rewriteSgr('38:2::255:0:0'), '38:5:196')
  assert.equal(rewriteSgr('38:2:255:0:0'), '38:5:196')
  assert.equal(rewriteSgr('31'), '31')
  assert.equal(rewriteSgr('38;5;12'), '38;5;12')
  assert.equal(rewriteSgr('38;2;300;0;0'), '38;2;300;0;0', 'not a colour: left alone')
  const f = new TrueColorFilter()
  assert.equal(f.feed(`${ESC}[31mred${ESC}[0m ${ESC}[38;2;0;128;255mblue${ESC}[2J`), `${ESC}[31mred${ESC}[0m ${ESC}[38;5;33mblue${ESC}[2J`)
})

test('a colour split across chunks is held until its end arrives', () => {
  const f = new TrueColorFilter()
  assert.equal(f.feed(`a${ESC}[38;2;25`), 'a')
  assert.equal(f.feed(`5;0;0mred`), `${ESC}[38;5;196mred`)
  assert.equal(f.feed(`b${ESC}`), 'b')
  assert.equal(f.feed('[0m'), `${ESC}[0m`)
  assert.equal(f.feed(`c${ESC}`), 'c')
  assert.equal(f.flush(), ESC, 'what is held comes out at the end')
})

test('what is held back is bounded: a long unfinished sequence passes through', () => {
  const f = new TrueColorFilter()
  const long = `${ESC}[${'1;'.repeat(MAX_HELD_CHARS)}`
  assert.equal(f.feed(long), long)
  assert.equal(f.feed(`${ESC}]0;title`), `${ESC}]0;title`, 'not a CSI: not held')
})

test('typing in the terminal: echoed, edited with Backspace, sent with Enter', () => {
  const ed = new LineEditor()
  let act = ed.feed('Zoë')
  assert.deepEqual(act, { echo: 'Zoë', send: [], eof: false, interrupt: false })
  act = ed.feed('x\x7f')
  assert.equal(act.echo, 'x\b \b')
  assert.equal(ed.unsent(), 'Zoë')
  act = ed.feed('\r')
  assert.deepEqual(act.send, ['Zoë\n'])
  assert.equal(act.echo, '\r\n')
  assert.equal(ed.unsent(), '')
  assert.equal(ed.feed('\x7f').echo, '', 'nothing to take back')
})

test('Ctrl+D sends what is typed and closes stdin; Ctrl+C asks to stop; arrows edit nothing', () => {
  const ed = new LineEditor()
  ed.feed('last')
  assert.deepEqual(ed.feed('\x04'), { echo: '', send: ['last'], eof: true, interrupt: false })
  assert.deepEqual(ed.feed('\x04').send, [])
  ed.feed('abc')
  const stop = ed.feed('\x03')
  assert.equal(stop.interrupt, true)
  assert.equal(ed.unsent(), '')
  assert.equal(ed.feed(`${ESC}[A${ESC}[D${ESC}OP`).echo, '')
  assert.equal(ed.unsent(), '')
})

test('a pasted text with several lines sends each line; long text goes in bounded pieces', () => {
  const ed = new LineEditor()
  assert.deepEqual(ed.feed('one\ntwo\nthr').send, ['one\n', 'two\n'])
  assert.equal(ed.unsent(), 'thr')
  const big = '😀'.repeat(MAX_INPUT_CHARS)
  const parts = pieces(big)
  assert.ok(parts.every(p => p.length <= MAX_INPUT_CHARS))
  assert.equal(parts.join(''), big)
  assert.ok(parts.every(p => !/[\ud800-\udbff]$/.test(p)), 'no piece ends inside a surrogate pair')
  assert.deepEqual(pieces(''), [])
})

const rec = { run_id: 'r', path: 'main.py', language: 'python', by: 'Ada', started_at: 5, stage: 'run', code: 0, duration_ms: 9, limit: null, error: null, stdout: 'hi', stderr: '' }

test('the history is read leniently: records of another shape are skipped', () => {
  assert.deepEqual(readRecord(rec), rec)
  assert.equal(readRecord({ ...rec, code: 'zero' }), null)
  assert.equal(readRecord({ ...rec, started_at: -1 }), null)
  assert.equal(readRecord({ ...rec, run_id: 5 }), null)
  assert.equal(readRecord('run'), null)
  assert.deepEqual(readHistory({ not: 'a list' }), [])
  assert.deepEqual(readHistory([rec, null, { ...rec, limit: 3 }]).length, 1)
})

test('the history is bounded: the newest runs, strings cut', () => {
  const many = Array.from({ length: 100 }, (_, i) => ({ ...rec, run_id: `r${i}`, started_at: i, stdout: 'x'.repeat(100_000) }))
  const read = readHistory(many)
  assert.equal(read.length, MAX_HISTORY_RUNS)
  assert.equal(read[0].run_id, 'r99')
  assert.ok(read.every(r => r.stdout.length === 64 * 1024))
})
