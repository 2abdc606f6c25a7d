/**
 * The room's breakpoints during a shared debug session, shown in every visible editor of
 * their file as a ◆ in the gutter and a mark in the overview ruler, whether or not this
 * window joined the session: the server merges everyone's breakpoints, so these are where
 * the program will stop. The state lives in `breakpointModel.ts`; this file only keeps one
 * decoration type in step with it.
 */
import * as vscode from 'vscode';

import { HOVER_TEXT, SharedBreakpoints, decoratedLines } from './breakpointModel';
import type { Ctx } from './context';
import { ProxyNotifications } from './protocol';

/** The gutter mark: a small diamond in VS Code's information blue, distinct from a breakpoint's red dot. */
const DIAMOND_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">' +
  '<path d="M8 3 L13 8 L8 13 L3 8 Z" fill="#3794ff" stroke="#ffffff" stroke-opacity="0.6" stroke-width="1"/></svg>';

export class SharedBreakpointMarks implements vscode.Disposable {
  private readonly model = new SharedBreakpoints();
  private readonly type = vscode.window.createTextEditorDecorationType({
    gutterIconPath: vscode.Uri.parse(`data:image/svg+xml;base64,${Buffer.from(DIAMOND_SVG).toString('base64')}`),
    gutterIconSize: 'contain',
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.infoForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
    isWholeLine: true,
  });

  constructor(private readonly ctx: Ctx) {
    ctx.on(ProxyNotifications.debugBreakpoints, (p) => {
      const key = this.documentKey(p.uri, p.path);
      if (key !== undefined && this.model.set(key, p)) {
        this.renderDocuments([key]);
      }
    });
    ctx.on(ProxyNotifications.debugEnded, (p) => this.renderDocuments(this.model.end(p.debugId)));
    ctx.own(vscode.window.onDidChangeVisibleTextEditors((editors) => editors.forEach((e) => this.render(e))));
    ctx.own(
      ctx.onDidChangeState(() => {
        if (!ctx.running || ctx.state.kind !== 'running' || ctx.state.status.state === 'idle') {
          this.renderDocuments(this.model.clear());
        }
      }),
    );
    ctx.own(this);
  }

  dispose(): void {
    this.type.dispose();
  }

  /** The document a notification names: its local URI, else its room path in the first folder. */
  private documentKey(uri: string | undefined, path: string): string | undefined {
    if (uri !== undefined) {
      return this.ctx.fromProtocolUri(uri).toString();
    }
    const folder = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file');
    return folder === undefined ? undefined : vscode.Uri.joinPath(folder.uri, path).toString();
  }

  private renderDocuments(keys: readonly string[]): void {
    const wanted = new Set(keys);
    for (const editor of vscode.window.visibleTextEditors) {
      if (wanted.has(editor.document.uri.toString())) {
        this.render(editor);
      }
    }
  }

  private render(editor: vscode.TextEditor): void {
    const document = editor.document;
    const lines = decoratedLines(this.model.linesOf(document.uri.toString()), document.lineCount);
    editor.setDecorations(
      this.type,
      lines.map((l) => ({ range: document.lineAt(l).range, hoverMessage: HOVER_TEXT })),
    );
  }
}
