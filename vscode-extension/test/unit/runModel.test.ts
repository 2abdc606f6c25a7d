// Shared runs without VS Code: what a run's terminal shows, how typing becomes stdin, and
// which run "Stop Run" acts on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { RunExitedParams, RunStartedParams } from '../../src/protocol';
import { LineDiscipline, currentRun, exitSummary, exitText, headerText, outputText, terminalName, toTerminalLines } from '../../src/runModel';

const started: RunStartedParams = { runId: 'r1', path: 'src/main.py', language: 'python', by: 2, byName: 'Ada', you: false };

function exited(fields: Partial<RunExitedParams>): RunExitedParams {
  return { runId: 'r1', stage: 'run', code: 0, durationMs: 420, limit: null, error: null, ...fields };
}

describe('the terminal of a run', () => {
  it('names the file, and who runs it when it is not you', () => {
    assert.equal(terminalName(started), 'Mesh: main.py (Ada)');
    assert.equal(terminalName({ ...started, you: true }), 'Mesh: main.py');
    assert.match(headerText(started), /▶ Ada runs src\/main\.py \(python\) · run r1/);
    assert.match(headerText({ ...started, you: true }), /▶ You run src\/main\.py/);
    assert.ok(headerText(started).endsWith('\r\n'));
  });

  it('says a debug session\'s program is one, whose output is in the Debug Console', () => {
    const debug = { ...started, debug: true };
    assert.equal(terminalName(debug), 'Mesh debug input: main.py (Ada)');
    assert.match(headerText(debug), /▶ Ada debugs src\/main\.py \(python\) · its output is in the Debug Console too/);
  });

  it('returns to the left at every line end', () => {
    assert.equal(toTerminalLines('a\nb\r\nc'), 'a\r\nb\r\nc');
  });

  it('keeps the program\'s ANSI escapes and colours stderr and compiler output', () => {
    assert.equal(outputText('stdout', '\x1b[32mok\x1b[0m\n'), '\x1b[32mok\x1b[0m\r\n');
    assert.equal(outputText('stderr', 'oops\n'), '\x1b[31moops\r\n\x1b[0m');
    assert.equal(outputText('compile', 'warning'), '\x1b[33mwarning\x1b[0m');
    assert.equal(outputText('stderr', ''), '');
  });

  it('ends with how the run ended', () => {
    assert.deepEqual(exitSummary(exited({})), { text: 'exit 0 · 420 ms', ok: true });
    assert.deepEqual(exitSummary(exited({ code: 3, durationMs: 1500 })), { text: 'exit 3 · 1.5 s', ok: false });
    assert.deepEqual(exitSummary(exited({ code: 137, durationMs: 10_000, limit: 'time' })), {
      text: 'time limit hit · exit 137 · 10.0 s',
      ok: false,
    });
    assert.deepEqual(exitSummary(exited({ stage: 'compile', code: 1, durationMs: 80 })), { text: 'compile error · exit 1 · 80 ms', ok: false });
    assert.deepEqual(exitSummary(exited({ code: null, durationMs: 0, error: 'stopped' })), { text: 'stopped', ok: false });
    assert.equal(exitText(exited({}), false), '\x1b[1m\x1b[32m■ exit 0 · 420 ms\x1b[0m\r\n');
    assert.ok(exitText(exited({ code: 1 }), true).startsWith('\r\n\x1b[1m\x1b[31m■ exit 1'), 'a new line after unfinished output');
  });
});

describe('typing into a run', () => {
  it('echoes what is typed and sends the line on Enter', () => {
    const d = new LineDiscipline();
    assert.deepEqual(d.type('h'), { echo: 'h', send: [], eof: false, stop: false });
    assert.deepEqual(d.type('é🎉'), { echo: 'é🎉', send: [], eof: false, stop: false });
    assert.deepEqual(d.type('\r'), { echo: '\r\n', send: ['hé🎉\n'], eof: false, stop: false });
  });

  it('edits with Backspace, by character', () => {
    const d = new LineDiscipline();
    d.type('ab🎉');
    assert.equal(d.type('\x7f').echo, '\b \b');
    assert.equal(d.type('\x7f\x7f\x7f').echo, '\b \b\b \b', 'nothing left to erase');
    assert.deepEqual(d.type('z\r').send, ['z\n']);
  });

  it('sends a paste line by line', () => {
    assert.deepEqual(new LineDiscipline().type('one\r\ntwo\nthree').send, ['one\n', 'two\n']);
  });

  it('Ctrl+D sends the typed text, or ends the input on an empty line', () => {
    const d = new LineDiscipline();
    d.type('abc');
    assert.deepEqual(d.type('\x04'), { echo: '', send: ['abc'], eof: false, stop: false });
    assert.deepEqual(d.type('\x04'), { echo: '', send: [], eof: true, stop: false });
  });

  it('Ctrl+C stops the run and drops the line', () => {
    const d = new LineDiscipline();
    d.type('abc');
    assert.deepEqual(d.type('\x03'), { echo: '^C\r\n', send: [], eof: false, stop: true });
  });

  it('ignores arrow keys and other escape sequences', () => {
    assert.deepEqual(new LineDiscipline().type('\x1b[A\x1b[1;5Cx\x1bOP'), { echo: 'x', send: [], eof: false, stop: false });
  });
});

describe('the run Stop Run acts on', () => {
  const runs = [
    { runId: 'old-mine', you: true, going: true, seq: 1 },
    { runId: 'theirs', you: false, going: true, seq: 3 },
    { runId: 'new-mine', you: true, going: true, seq: 2 },
    { runId: 'done', you: true, going: false, seq: 4 },
  ];

  it('is the active terminal\'s run while it is going', () => {
    assert.equal(currentRun(runs, 'theirs'), 'theirs');
  });

  it('else your newest run going, else anyone\'s', () => {
    assert.equal(currentRun(runs, 'done'), 'new-mine');
    assert.equal(currentRun(runs, undefined), 'new-mine');
    assert.equal(currentRun(runs.filter((r) => !r.you), undefined), 'theirs');
    assert.equal(currentRun([], undefined), undefined);
  });
});
