/**
 * Tells the proxy where the local user is: their selections (`mesh/cursor`) and the file
 * and range they look at (`mesh/activeEditor`, which followers follow). Both go through a
 * light throttle that always sends the newest value.
 */
import * as vscode from 'vscode';

import type { Ctx } from './context';
import { EditorNotifications } from './protocol';
import type { ActiveEditorParams, CursorParams } from './protocol';
import { LatestThrottle } from './throttle';

/** Cursor moves are sent at most this often: smooth for others, light on the wire. */
const CURSOR_INTERVAL_MS = 50;
/** Scrolling is sent at most this often; followers need no more. */
const ACTIVE_EDITOR_INTERVAL_MS = 100;

export class LocalPresence {
  private readonly cursor: LatestThrottle<CursorParams>;
  private readonly activeEditor: LatestThrottle<ActiveEditorParams>;

  constructor(private readonly ctx: Ctx) {
    this.cursor = new LatestThrottle(CURSOR_INTERVAL_MS, (p) => ctx.notify(EditorNotifications.cursor, p));
    this.activeEditor = new LatestThrottle(ACTIVE_EDITOR_INTERVAL_MS, (p) => ctx.notify(EditorNotifications.activeEditor, p));
    ctx.own({ dispose: () => this.cursor.dispose() });
    ctx.own({ dispose: () => this.activeEditor.dispose() });

    ctx.own(
      vscode.window.onDidChangeTextEditorSelection((e) => {
        if (e.textEditor === vscode.window.activeTextEditor) {
          this.sendCursor(e.textEditor);
        }
      }),
    );
    ctx.own(
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        this.sendActiveEditor(editor);
        if (editor !== undefined) {
          this.sendCursor(editor);
        }
      }),
    );
    ctx.own(
      vscode.window.onDidChangeTextEditorVisibleRanges((e) => {
        if (e.textEditor === vscode.window.activeTextEditor) {
          this.sendActiveEditor(e.textEditor);
        }
      }),
    );
    // Once in a room, say at once where the user is instead of waiting for them to move.
    ctx.own(
      ctx.onDidChangeState(() => {
        if (ctx.state.kind === 'running' && ctx.state.status.state === 'connected') {
          this.sendAll();
        }
      }),
    );
  }

  /** Sends the current editor and selections. */
  sendAll(): void {
    const editor = vscode.window.activeTextEditor;
    this.sendActiveEditor(editor);
    if (editor !== undefined) {
      this.sendCursor(editor);
    }
  }

  private sendCursor(editor: vscode.TextEditor): void {
    if (!this.ctx.running || editor.document.uri.scheme !== 'file') {
      return;
    }
    this.cursor.push({
      uri: this.ctx.toProtocolUri(editor.document.uri),
      selections: editor.selections.map((s) => ({
        anchor: { line: s.anchor.line, character: s.anchor.character },
        head: { line: s.active.line, character: s.active.character },
      })),
    });
  }

  private sendActiveEditor(editor: vscode.TextEditor | undefined): void {
    if (!this.ctx.running) {
      return;
    }
    if (editor === undefined || editor.document.uri.scheme !== 'file') {
      this.activeEditor.push({ uri: null });
      return;
    }
    const visible = editor.visibleRanges[0];
    this.activeEditor.push({
      uri: this.ctx.toProtocolUri(editor.document.uri),
      visibleRange:
        visible === undefined
          ? undefined
          : {
              start: { line: visible.start.line, character: visible.start.character },
              end: { line: visible.end.line, character: visible.end.character },
            },
    });
  }
}
