// "Mesh: Ask Ghost About Selection" without VS Code: the message the command sends.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MAX_SELECTION_BYTES, ghostAskParams } from '../../src/ghostAsk';

describe('asking the ghost about a selection', () => {
  it('sends 1-based inclusive lines, the text and the mode', () => {
    const sel = { startLine: 0, endLine: 1, endCharacter: 16, empty: false, text: 'def add(a, b):\n    return a - b' };
    assert.deepEqual(ghostAskParams(' why? ', 'explain', 'file:///p/calc.py', sel), {
      text: 'why?',
      mode: 'explain',
      uri: 'file:///p/calc.py',
      startLine: 1,
      endLine: 2,
      selection: 'def add(a, b):\n    return a - b',
    });
  });

  it('a selection ending at a line start leaves that line out; no mode means the default', () => {
    const sel = { startLine: 2, endLine: 4, endCharacter: 0, empty: false, text: 'a\nb\n' };
    const p = ghostAskParams('q', undefined, 'file:///p/x.py', sel);
    assert.deepEqual([p.startLine, p.endLine, 'mode' in p], [3, 4, false]);
    const caret = ghostAskParams('q', 'suggest', 'file:///p/x.py', { startLine: 5, endLine: 5, endCharacter: 0, empty: true, text: 'line' });
    assert.deepEqual([caret.startLine, caret.endLine, caret.selection], [6, 6, 'line']);
  });

  it('a selection over the bound goes as its lines only', () => {
    const big = 'x'.repeat(MAX_SELECTION_BYTES + 1);
    const p = ghostAskParams('q', 'suggest', 'file:///p/x.py', { startLine: 0, endLine: 0, endCharacter: 5, empty: false, text: big });
    assert.equal(p.selection, undefined);
  });
});
