/**
 * "Mesh: Ask Ghost About Selection" without VS Code: the `mesh/ghostAsk` params for a question
 * and an editor selection. VS Code counts lines from 0 and a selection that ends at the start
 * of a line does not take that line in; the contract counts from 1, inclusive.
 */
import type { GhostAskParams, GhostMode } from './protocol';

/** A selection as VS Code gives it (0-based lines). */
export interface EditorSelection {
  startLine: number;
  endLine: number;
  endCharacter: number;
  empty: boolean;
  /** The selected text, or the caret's line when nothing is selected. */
  text: string;
}

/** The longest selection text sent (the protocol's `MAX_GHOST_SELECTION_BYTES`); a larger one
 * goes as its lines only, and the ghost reads them from the room. */
export const MAX_SELECTION_BYTES = 16 * 1024;

/** The params for asking `text` in `mode` (none: the role's default) about `selection` of `uri`. */
export function ghostAskParams(text: string, mode: GhostMode | undefined, uri: string, selection: EditorSelection): GhostAskParams {
  let end = selection.endLine;
  if (!selection.empty && selection.endCharacter === 0 && end > selection.startLine) {
    end -= 1;
  }
  const params: GhostAskParams = { text: text.trim(), uri, startLine: selection.startLine + 1, endLine: end + 1 };
  if (mode) {
    params.mode = mode;
  }
  if (Buffer.byteLength(selection.text, 'utf8') <= MAX_SELECTION_BYTES) {
    params.selection = selection.text;
  }
  return params;
}
