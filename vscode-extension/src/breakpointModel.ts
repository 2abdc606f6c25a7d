/**
 * The room's breakpoints during a shared debug session, as `mesh/debugBreakpoints` reports
 * them, without touching VS Code: per document, the session and the lines to mark.
 * `sharedBreakpoints.ts` turns this into decorations.
 */
import type { DebugBreakpointsParams } from './protocol';

/** What the hover over a marked line says. */
export const HOVER_TEXT = 'breakpoint in the shared debug session';

/** One document's marks. */
interface Marks {
  debugId: string;
  /** 1-based, sorted, each once. */
  lines: number[];
}

/**
 * The marks per document. Documents are keyed by a string the caller chooses (the VS Code
 * URI's string form), so the model stays free of VS Code.
 */
export class SharedBreakpoints {
  private readonly byDocument = new Map<string, Marks>();

  /** Takes a file's full set (an empty one clears it); returns whether anything changed. */
  set(key: string, params: Pick<DebugBreakpointsParams, 'debugId' | 'lines'>): boolean {
    const lines = normalizeLines(params.lines);
    const before = this.byDocument.get(key);
    if (lines.length === 0) {
      return this.byDocument.delete(key);
    }
    this.byDocument.set(key, { debugId: params.debugId, lines });
    return before === undefined || before.debugId !== params.debugId || !sameLines(before.lines, lines);
  }

  /** Forgets a session's marks (it ended); returns the documents that had some. */
  end(debugId: string): string[] {
    const ended = [...this.byDocument].filter(([, m]) => m.debugId === debugId).map(([key]) => key);
    ended.forEach((key) => this.byDocument.delete(key));
    return ended;
  }

  /** Forgets every mark (the proxy stopped); returns the documents that had some. */
  clear(): string[] {
    const keys = [...this.byDocument.keys()];
    this.byDocument.clear();
    return keys;
  }

  /** The 1-based lines marked in a document. */
  linesOf(key: string): readonly number[] {
    return this.byDocument.get(key)?.lines ?? [];
  }
}

/**
 * The zero-based lines to decorate in a document of `lineCount` lines: a line past the end
 * (the file changed since the breakpoint was set) is not drawn rather than moved.
 */
export function decoratedLines(lines: readonly number[], lineCount: number): number[] {
  return lines.filter((l) => l <= lineCount).map((l) => l - 1);
}

/** Whole positive line numbers from the wire, sorted, each once. */
function normalizeLines(lines: unknown): number[] {
  if (!Array.isArray(lines)) {
    return [];
  }
  const valid = lines.filter((l): l is number => typeof l === 'number' && Number.isInteger(l) && l >= 1);
  return [...new Set(valid)].sort((a, b) => a - b);
}

function sameLines(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((l, i) => l === b[i]);
}
