/**
 * Other people's cursors and selections as decorations: a tint over each selection, a thin
 * caret in the person's colour, and their name in a small label at the caret. The shapes
 * come from `cursorModel.ts`; this file only keeps VS Code decoration types in step.
 */
import * as vscode from 'vscode';

import type { Ctx } from './context';
import { type CursorDecoration, SELECTION_ALPHA, buildCursorDecorations, withAlpha } from './cursorModel';
import { ProxyNotifications } from './protocol';
import type { Position, Range } from './protocol';

/** The decoration types of one participant's look. */
interface LookTypes {
  selection: vscode.TextEditorDecorationType;
  caret: vscode.TextEditorDecorationType;
  labelAbove: vscode.TextEditorDecorationType;
  labelBelow: vscode.TextEditorDecorationType;
}

/**
 * CSS for the name label. `textDecoration` is the documented way to pass extra CSS to an
 * attachment: positioned absolutely, the label takes no room, so text never shifts.
 */
function labelCss(placement: 'above' | 'below'): string {
  const shift = placement === 'above' ? 'translateY(-100%)' : 'translateY(100%)';
  return (
    `none; position: absolute; z-index: 10; transform: ${shift}; padding: 0 4px; border-radius: 3px;` +
    ' font-size: 0.85em; font-weight: normal; font-style: normal; line-height: 1.35; white-space: nowrap; pointer-events: none;'
  );
}

export class RemoteCursors implements vscode.Disposable {
  /** The decorations per document, keyed by the VS Code URI's string form. */
  private readonly byDocument = new Map<string, CursorDecoration[]>();
  private readonly types = new Map<string, LookTypes>();

  constructor(ctx: Ctx) {
    ctx.on(ProxyNotifications.cursors, ({ uri, cursors }) => {
      const key = ctx.fromProtocolUri(uri).toString();
      const decorations = buildCursorDecorations(cursors, ctx.selfConnId);
      if (decorations.length === 0) {
        this.byDocument.delete(key);
      } else {
        this.byDocument.set(key, decorations);
      }
      this.ensureTypes(decorations);
      for (const editor of vscode.window.visibleTextEditors) {
        if (editor.document.uri.toString() === key) {
          this.render(editor);
        }
      }
      this.dropUnusedTypes();
    });
    ctx.own(vscode.window.onDidChangeVisibleTextEditors((editors) => editors.forEach((e) => this.render(e))));
    ctx.own(
      ctx.onDidChangeState(() => {
        if (!ctx.running || ctx.state.kind !== 'running' || ctx.state.status.state === 'idle') {
          this.clear();
        }
      }),
    );
    ctx.own(this);
  }

  /** The decorations shown in a document (for the test hook and the tree). */
  decorationsOf(uri: vscode.Uri): readonly CursorDecoration[] {
    return this.byDocument.get(uri.toString()) ?? [];
  }

  /** Removes every remote cursor (the session ended). */
  clear(): void {
    this.byDocument.clear();
    this.dropUnusedTypes();
  }

  private render(editor: vscode.TextEditor): void {
    const decorations = this.byDocument.get(editor.document.uri.toString()) ?? [];
    const shown = new Map(decorations.map((d) => [d.key, d]));
    for (const [key, types] of this.types) {
      const d = shown.get(key);
      editor.setDecorations(types.selection, d === undefined ? [] : d.selections.map(toRange));
      editor.setDecorations(types.caret, d === undefined ? [] : d.carets.map((p) => caretOptions(p, d.name)));
      const label = d?.label;
      editor.setDecorations(types.labelAbove, label?.placement === 'above' ? [new vscode.Range(toPos(label.at), toPos(label.at))] : []);
      editor.setDecorations(types.labelBelow, label?.placement === 'below' ? [new vscode.Range(toPos(label.at), toPos(label.at))] : []);
    }
  }

  private ensureTypes(decorations: readonly CursorDecoration[]): void {
    for (const d of decorations) {
      if (this.types.has(d.key)) {
        continue;
      }
      const label = (placement: 'above' | 'below'): vscode.TextEditorDecorationType =>
        vscode.window.createTextEditorDecorationType({
          rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
          after: { contentText: d.name, backgroundColor: d.color, color: d.labelTextColor, textDecoration: labelCss(placement) },
        });
      this.types.set(d.key, {
        selection: vscode.window.createTextEditorDecorationType({
          backgroundColor: withAlpha(d.color, SELECTION_ALPHA),
          rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
          overviewRulerColor: d.color,
          overviewRulerLane: vscode.OverviewRulerLane.Center,
        }),
        caret: vscode.window.createTextEditorDecorationType({
          rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
          overviewRulerColor: d.color,
          overviewRulerLane: vscode.OverviewRulerLane.Full,
          // A zero-width character with a 2px left border: a caret that takes no room.
          before: {
            contentText: '\u200b',
            textDecoration: `none; position: absolute; top: 0; bottom: 0; width: 0; border-left: 2px solid ${d.color}; margin-left: -1px;`,
          },
        }),
        labelAbove: label('above'),
        labelBelow: label('below'),
      });
    }
  }

  /** Disposes the types no document uses any more (a participant left or changed colour). */
  private dropUnusedTypes(): void {
    const used = new Set<string>();
    for (const list of this.byDocument.values()) {
      list.forEach((d) => used.add(d.key));
    }
    for (const [key, types] of this.types) {
      if (!used.has(key)) {
        // Disposing a type removes its decorations from every editor.
        [types.selection, types.caret, types.labelAbove, types.labelBelow].forEach((t) => t.dispose());
        this.types.delete(key);
      }
    }
  }

  dispose(): void {
    this.byDocument.clear();
    this.dropUnusedTypes();
  }
}

function toPos(p: Position): vscode.Position {
  return new vscode.Position(p.line, p.character);
}

function toRange(r: Range): vscode.Range {
  return new vscode.Range(toPos(r.start), toPos(r.end));
}

function caretOptions(p: Position, name: string): vscode.DecorationOptions {
  const hover = new vscode.MarkdownString();
  hover.appendText(name);
  return { range: new vscode.Range(toPos(p), toPos(p)), hoverMessage: hover };
}
