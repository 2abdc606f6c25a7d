/**
 * What to draw for other people's cursors, computed from a `mesh/cursors` notification
 * without touching VS Code: per participant, the selection ranges to tint, the carets to
 * draw and where their name label goes. `cursors.ts` turns this into decorations.
 */
import type { Position, Range, RemoteCursor } from './protocol';

/** Used when a participant's colour is not `#rrggbb` (the proxy should never send one). */
export const FALLBACK_COLOR = '#888888';

/** Alpha of a remote selection's tint: visible, yet the text stays readable. */
export const SELECTION_ALPHA = 0x40;

/** One participant's decorations in one document. */
export interface CursorDecoration {
  /**
   * Identifies the participant's look: a decoration type is made once per key. A new
   * colour or name is a new key, so stale styles are never reused.
   */
  key: string;
  connId: number;
  name: string;
  color: string;
  /** Black or white, whichever reads better on `color`. */
  labelTextColor: string;
  /** Non-empty selections, each with `start` before `end`. */
  selections: Range[];
  /** Every caret (the head of each selection). */
  carets: Position[];
  /** The name label sits at the primary (first) caret; above its line, or below on line 0. */
  label: { at: Position; placement: 'above' | 'below' } | undefined;
}

/** Builds the decorations for a document's remote cursors, skipping the local user. */
export function buildCursorDecorations(cursors: readonly RemoteCursor[], selfConnId?: number): CursorDecoration[] {
  const byConn = new Map<number, CursorDecoration>();
  for (const cursor of cursors) {
    if (cursor.connId === selfConnId) {
      continue;
    }
    const color = normaliseColor(cursor.color);
    const name = cursor.name.trim() === '' ? `guest ${cursor.connId}` : cursor.name.trim();
    let deco = byConn.get(cursor.connId);
    if (deco === undefined) {
      deco = {
        key: `${cursor.connId}|${color}|${name}`,
        connId: cursor.connId,
        name,
        color,
        labelTextColor: contrastText(color),
        selections: [],
        carets: [],
        label: undefined,
      };
      byConn.set(cursor.connId, deco);
    }
    for (const sel of cursor.selections) {
      if (!isPosition(sel.anchor) || !isPosition(sel.head)) {
        continue;
      }
      if (comparePositions(sel.anchor, sel.head) !== 0) {
        const [start, end] = comparePositions(sel.anchor, sel.head) < 0 ? [sel.anchor, sel.head] : [sel.head, sel.anchor];
        deco.selections.push({ start, end });
      }
      deco.carets.push(sel.head);
      deco.label ??= { at: sel.head, placement: sel.head.line === 0 ? 'below' : 'above' };
    }
  }
  return [...byConn.values()].sort((a, b) => a.connId - b.connId);
}

/** Orders two positions: negative, zero or positive. */
export function comparePositions(a: Position, b: Position): number {
  return a.line !== b.line ? a.line - b.line : a.character - b.character;
}

/** `#rrggbb` in lower case, or the fallback colour. Accepts `#rgb` too. */
export function normaliseColor(color: string): string {
  const c = color.trim().toLowerCase();
  if (/^#[0-9a-f]{6}$/.test(c)) {
    return c;
  }
  if (/^#[0-9a-f]{3}$/.test(c)) {
    return `#${c[1]}${c[1]}${c[2]}${c[2]}${c[3]}${c[3]}`;
  }
  return FALLBACK_COLOR;
}

/** `#rrggbb` plus an alpha byte: `#rrggbbaa`. */
export function withAlpha(color: string, alpha: number): string {
  const a = Math.max(0, Math.min(255, Math.round(alpha)));
  return `${normaliseColor(color)}${a.toString(16).padStart(2, '0')}`;
}

/** Black or white text for a background colour, by its relative luminance (WCAG). */
export function contrastText(color: string): string {
  const c = normaliseColor(color);
  const channel = (i: number): number => {
    const v = parseInt(c.slice(i, i + 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
  // Black and white contrast equally at 0.179; near there white reads better on saturated
  // colours (a red label), so the switch sits a little higher.
  return luminance > 0.2 ? '#000000' : '#ffffff';
}

function isPosition(p: unknown): p is Position {
  if (typeof p !== 'object' || p === null) {
    return false;
  }
  const { line, character } = p as Record<string, unknown>;
  return Number.isInteger(line) && Number.isInteger(character) && (line as number) >= 0 && (character as number) >= 0;
}
