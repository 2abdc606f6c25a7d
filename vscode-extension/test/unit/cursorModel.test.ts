import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { FALLBACK_COLOR, buildCursorDecorations, contrastText, normaliseColor, withAlpha } from '../../src/cursorModel';
import type { RemoteCursor } from '../../src/protocol';

const pos = (line: number, character: number) => ({ line, character });

const ada: RemoteCursor = {
  connId: 7,
  name: 'Ada',
  color: '#E6194B',
  selections: [{ anchor: pos(2, 4), head: pos(2, 4) }],
};

describe('buildCursorDecorations', () => {
  it('draws a caret and a label for a collapsed selection', () => {
    const [d, ...rest] = buildCursorDecorations([ada]);
    assert.equal(rest.length, 0);
    assert.deepEqual(d, {
      key: '7|#e6194b|Ada',
      connId: 7,
      name: 'Ada',
      color: '#e6194b',
      labelTextColor: '#ffffff',
      selections: [],
      carets: [pos(2, 4)],
      label: { at: pos(2, 4), placement: 'above' },
    });
  });

  it('orders a backwards selection and puts the caret at its head', () => {
    const [d] = buildCursorDecorations([{ ...ada, selections: [{ anchor: pos(5, 1), head: pos(3, 2) }] }]);
    assert.deepEqual(d?.selections, [{ start: pos(3, 2), end: pos(5, 1) }]);
    assert.deepEqual(d?.carets, [pos(3, 2)]);
  });

  it('keeps every selection of a multi-cursor, labels the first', () => {
    const [d] = buildCursorDecorations([
      { ...ada, selections: [{ anchor: pos(1, 0), head: pos(1, 3) }, { anchor: pos(4, 0), head: pos(4, 0) }] },
    ]);
    assert.equal(d?.selections.length, 1);
    assert.deepEqual(d?.carets, [pos(1, 3), pos(4, 0)]);
    assert.deepEqual(d?.label, { at: pos(1, 3), placement: 'above' });
  });

  it('puts the label below the caret on the first line', () => {
    const [d] = buildCursorDecorations([{ ...ada, selections: [{ anchor: pos(0, 0), head: pos(0, 0) }] }]);
    assert.equal(d?.label?.placement, 'below');
  });

  it('skips the local user and sorts by connection', () => {
    const grace: RemoteCursor = { connId: 3, name: 'Grace', color: '#3cb44b', selections: [{ anchor: pos(0, 0), head: pos(0, 1) }] };
    const me: RemoteCursor = { connId: 9, name: 'me', color: '#000000', selections: [] };
    assert.deepEqual(buildCursorDecorations([ada, me, grace], 9).map((d) => d.name), ['Grace', 'Ada']);
  });

  it('merges entries of one connection', () => {
    const more: RemoteCursor = { ...ada, selections: [{ anchor: pos(8, 0), head: pos(8, 2) }] };
    const ds = buildCursorDecorations([ada, more]);
    assert.equal(ds.length, 1);
    assert.equal(ds[0]?.carets.length, 2);
  });

  it('survives bad input from the wire', () => {
    const [d] = buildCursorDecorations([
      {
        connId: 1,
        name: '  ',
        color: 'red; background: url(x)',
        selections: [{ anchor: pos(-1, 0), head: pos(0, 0) }, { anchor: pos(1.5, 0), head: pos(1, 0) }],
      },
    ]);
    assert.equal(d?.name, 'guest 1');
    assert.equal(d?.color, FALLBACK_COLOR);
    assert.deepEqual(d?.carets, []);
    assert.equal(d?.label, undefined);
  });

  it('a participant with no selections is kept without a caret (nothing drawn)', () => {
    const [d] = buildCursorDecorations([{ ...ada, selections: [] }]);
    assert.deepEqual(d?.carets, []);
    assert.equal(d?.label, undefined);
  });
});

describe('colours', () => {
  it('normalises #rrggbb and #rgb, rejects the rest', () => {
    assert.equal(normaliseColor('#ABCDEF'), '#abcdef');
    assert.equal(normaliseColor('#abc'), '#aabbcc');
    assert.equal(normaliseColor('blue'), FALLBACK_COLOR);
    assert.equal(normaliseColor('#12345g'), FALLBACK_COLOR);
  });

  it('adds alpha', () => {
    assert.equal(withAlpha('#e6194b', 0x40), '#e6194b40');
    assert.equal(withAlpha('#e6194b', 300), '#e6194bff');
    assert.equal(withAlpha('#e6194b', 0), '#e6194b00');
  });

  it('picks readable label text', () => {
    assert.equal(contrastText('#ffe119'), '#000000');
    assert.equal(contrastText('#000075'), '#ffffff');
    assert.equal(contrastText('#e6194b'), '#ffffff');
    assert.equal(contrastText('#ffffff'), '#000000');
  });
});
