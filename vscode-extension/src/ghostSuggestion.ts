/**
 * The pure parts of previewing the ghost's suggestions, without VS Code: applying a
 * suggestion's search/replace edits to a file's text (as the ghost does when a writer accepts
 * it), and the lines a picker shows. The preview and the ghost must agree, so the rules are
 * the ghost's: edits apply in order, each to the text the ones before it left; the first
 * occurrence of `search` becomes `replace`; an empty `search` appends `replace` at the end
 * (which is also how a new file is created from nothing).
 */
import type { GhostEdit, GhostStateParams, GhostSuggestion } from './protocol';

/** A suggestion's result for one file: the text after its edits, or why it cannot apply. */
export type Applied = { ok: true; text: string } | { ok: false; error: string };

/** Applies the edits of `suggestion` that name `path` to `text` (`undefined`: the file does not exist yet). */
export function applyGhostEdits(text: string | undefined, edits: readonly GhostEdit[], path: string): Applied {
  let current = text ?? '';
  for (const e of edits) {
    if (e.path !== path) {
      continue;
    }
    if (e.search === '') {
      current += e.replace;
      continue;
    }
    const at = current.indexOf(e.search);
    if (at < 0) {
      return {
        ok: false,
        error: `${path} no longer contains the text the ghost quoted (someone changed it since): accepting would fail; ask again`,
      };
    }
    current = current.slice(0, at) + e.replace + current.slice(at + e.search.length);
  }
  return { ok: true, text: current };
}

/** One pending suggestion with the ghost that holds it, as a picker lists it. */
export interface PendingSuggestion {
  ghost: string;
  suggestion: GhostSuggestion;
}

/** Every pending suggestion of every ghost, oldest first within each ghost. */
export function pendingSuggestions(state: GhostStateParams): PendingSuggestion[] {
  return state.ghosts.flatMap((g) => g.suggestions.map((suggestion) => ({ ghost: g.name, suggestion })));
}

/** The label and detail of a suggestion in a picker: its number, who asked, the files. */
export function describeSuggestion(p: PendingSuggestion): { label: string; description: string; detail: string } {
  const s = p.suggestion;
  const files = s.files.map((f) => f.path).join(', ');
  return {
    label: `#${s.id} ${files || '(no files)'}`,
    description: `asked by ${s.asker}, from ${p.ghost}`,
    detail: s.omitted ? 'too large to preview: the change is in the chat' : `${s.edits.length} edit${s.edits.length === 1 ? '' : 's'}`,
  };
}
