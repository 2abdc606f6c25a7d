import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { GhostEdit } from '../../src/protocol';
import { applyGhostEdits, describeSuggestion, pendingSuggestions } from '../../src/ghostSuggestion';

const CALC = 'def add(a, b):\n    return a - b\n\n\nprint(add(2, 3))\n';
const edit = (path: string, search: string, replace: string): GhostEdit => ({ path, search, replace });

describe('ghost suggestion previews', () => {
  it('replaces the first occurrence only, in order, each edit on the text the last left', () => {
    const r = applyGhostEdits('x = 1\nx = 1\n', [edit('a.py', 'x = 1', 'y = 2'), edit('a.py', 'y = 2\nx', 'z')], 'a.py');
    assert.deepEqual(r, { ok: true, text: 'z = 1\n' });
  });

  it('applies only the edits of the file previewed and keeps the rest of the text', () => {
    const edits = [edit('calc.py', '    return a - b\n', '    return a + b\n'), edit('other.py', 'a', 'b')];
    assert.deepEqual(applyGhostEdits(CALC, edits, 'calc.py'), { ok: true, text: CALC.replace('a - b', 'a + b') });
  });

  it('an empty quote appends, and creates a file that does not exist yet', () => {
    assert.deepEqual(applyGhostEdits('a\n', [edit('f', '', 'b\n')], 'f'), { ok: true, text: 'a\nb\n' });
    assert.deepEqual(applyGhostEdits(undefined, [edit('new/x.py', '', 'x = 1\n')], 'new/x.py'), { ok: true, text: 'x = 1\n' });
  });

  it('a quote no longer in the file says that accepting would fail, never a half-applied preview', () => {
    const r = applyGhostEdits(CALC, [edit('calc.py', 'return a - b', 'return a + b'), edit('calc.py', 'gone', 'x')], 'calc.py');
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, /no longer contains the text the ghost quoted/);
  });

  it('lists every ghost\'s pending suggestions with who asked and what they change', () => {
    const list = pendingSuggestions({
      ghosts: [
        { connId: 3, name: 'ghost (m)', requests: [], suggestions: [{ id: 2, asker: 'ada', files: [{ path: 'calc.py' }], edits: [edit('calc.py', 'a', 'b')] }] },
        { connId: 4, name: 'ghost (n)', requests: [], suggestions: [{ id: 5, asker: 'bob', files: [{ path: 'x' }, { path: 'y' }], edits: [], omitted: true }] },
      ],
    });
    assert.deepEqual(list.map(describeSuggestion), [
      { label: '#2 calc.py', description: 'asked by ada, from ghost (m)', detail: '1 edit' },
      { label: '#5 x, y', description: 'asked by bob, from ghost (n)', detail: 'too large to preview: the change is in the chat' },
    ]);
  });
});
