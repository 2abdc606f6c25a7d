/**
 * "Mesh: Ask Ghost About Selection": asks the room's ghost (an AI participant) about the
 * selected lines of the active editor (the caret's line when nothing is selected). The mode is
 * picked first (a reader's request is an explanation whatever is picked: the server says so);
 * the ghost's progress and answer arrive in the chat like everyone's messages.
 */
import * as vscode from 'vscode';

import type { Ctx } from './context';
import { ghostAskParams } from './ghostAsk';
import { EditorRequests, type GhostMode } from './protocol';

const MODES: Array<vscode.QuickPickItem & { mode: GhostMode }> = [
  { label: 'Suggest a change', description: 'a diff to accept or reject', mode: 'suggest' },
  { label: 'Write it in', description: 'the ghost types the change; one undo removes it', mode: 'write' },
  { label: 'Explain only', description: 'an answer in the chat (what readers may ask)', mode: 'explain' },
];

export class GhostAsk {
  constructor(private readonly ctx: Ctx) {}

  /** Asks about the active editor's selection; `question` and `mode` skip the prompts. */
  async ask(question?: string, mode?: GhostMode): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('Mesh: open a file of the room and select the lines to ask about.');
      return;
    }
    if (!mode) {
      const picked = await vscode.window.showQuickPick(MODES, { placeHolder: 'How should the ghost answer?' });
      if (!picked) {
        return;
      }
      mode = picked.mode;
    }
    const text = question ?? (await vscode.window.showInputBox({ prompt: 'Ask the ghost about the selection', placeHolder: 'why does this fail?' }));
    if (!text?.trim()) {
      return;
    }
    const sel = editor.selection;
    const selected = sel.isEmpty ? editor.document.lineAt(sel.active.line).text : editor.document.getText(sel);
    const params = ghostAskParams(
      text,
      mode,
      editor.document.uri.toString(),
      { startLine: sel.start.line, endLine: sel.end.line, endCharacter: sel.end.character, empty: sel.isEmpty, text: selected },
    );
    try {
      await this.ctx.request(EditorRequests.ghostAsk, params);
      void vscode.window.setStatusBarMessage(`Mesh: asked the ghost about lines ${params.startLine}-${params.endLine}; its answer comes in the chat`, 8000);
    } catch (e) {
      void vscode.window.showErrorMessage(`Mesh: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
