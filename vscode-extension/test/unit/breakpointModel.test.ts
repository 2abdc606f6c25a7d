// The room's breakpoints without VS Code: which lines each document marks, and when they go.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { HOVER_TEXT, SharedBreakpoints, decoratedLines } from '../../src/breakpointModel';

const APP = 'file:///home/ada/proj/src/app.py';
const LIB = 'file:///home/ada/proj/src/lib.py';

describe('the shared breakpoints of a debug session', () => {
  it('keeps each file\'s full set, sorted and once each, and says when it changed', () => {
    const model = new SharedBreakpoints();
    assert.equal(model.set(APP, { debugId: 'd1', lines: [12, 3, 3] }), true);
    assert.deepEqual(model.linesOf(APP), [3, 12]);
    assert.equal(model.set(APP, { debugId: 'd1', lines: [3, 12] }), false, 'the same set again');
    assert.equal(model.set(APP, { debugId: 'd1', lines: [5] }), true);
    assert.deepEqual(model.linesOf(APP), [5], 'a new set replaces the old one');
    assert.deepEqual(model.linesOf(LIB), []);
  });

  it('clears a file with an empty set, and drops what is not a line number', () => {
    const model = new SharedBreakpoints();
    model.set(APP, { debugId: 'd1', lines: [4] });
    assert.equal(model.set(APP, { debugId: 'd1', lines: [] }), true);
    assert.deepEqual(model.linesOf(APP), []);
    assert.equal(model.set(APP, { debugId: 'd1', lines: [] }), false, 'nothing to clear');
    model.set(APP, { debugId: 'd1', lines: [0, -2, 1.5, 'x', 7] as unknown as number[] });
    assert.deepEqual(model.linesOf(APP), [7]);
    model.set(LIB, { debugId: 'd1', lines: null as unknown as number[] });
    assert.deepEqual(model.linesOf(LIB), []);
  });

  it('forgets a session\'s marks when it ends, and only that session\'s', () => {
    const model = new SharedBreakpoints();
    model.set(APP, { debugId: 'd1', lines: [1] });
    model.set(LIB, { debugId: 'd2', lines: [2] });
    assert.deepEqual(model.end('d3'), []);
    assert.deepEqual(model.end('d1'), [APP]);
    assert.deepEqual(model.linesOf(APP), []);
    assert.deepEqual(model.linesOf(LIB), [2]);
    assert.deepEqual(model.clear(), [LIB]);
    assert.deepEqual(model.linesOf(LIB), []);
  });

  it('decorates zero-based lines inside the document only', () => {
    assert.deepEqual(decoratedLines([1, 3, 10], 5), [0, 2]);
    assert.deepEqual(decoratedLines([], 5), []);
    assert.equal(HOVER_TEXT, 'breakpoint in the shared debug session');
  });
});
