/**
 * `workspace/applyEdit` with an atomic version check. The language client checks the
 * version in the extension host and then calls `workspace.applyEdit`, which for the active
 * editor first computes "more minimal" edits asynchronously and drops the version on the
 * way: a keystroke landing in between gets the remote edit applied on top of it, answered
 * `applied: true`. The proxy would then take its own edit for the user's.
 *
 * For a document shown in an editor, `TextEditor.edit` is used instead: the renderer
 * compares the version and applies in one step, so a stale edit is refused
 * (`applied: false`) and the proxy re-bases, as docs/lsp-extensions.md says. Other edits take
 * the language client's way.
 */
import * as vscode from 'vscode';
import { TextDocumentEdit } from 'vscode-languageclient/node';
import type { ApplyWorkspaceEditParams, ApplyWorkspaceEditResult, LanguageClient } from 'vscode-languageclient/node';

export async function applyWorkspaceEdit(client: LanguageClient, params: ApplyWorkspaceEditParams): Promise<ApplyWorkspaceEditResult> {
  const changes = params.edit.documentChanges;
  const only = changes?.length === 1 ? changes[0] : undefined;
  if (only !== undefined && TextDocumentEdit.is(only)) {
    const uri = client.protocol2CodeConverter.asUri(only.textDocument.uri).toString();
    const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === uri);
    if (editor !== undefined) {
      const edits = await client.protocol2CodeConverter.asTextEdits(only.edits);
      // From here to `edit` nothing awaits: the check and the version the builder captures
      // are the same, and the renderer refuses the edit if its document moved on since.
      const expected = only.textDocument.version;
      if (expected !== null && editor.document.version !== expected) {
        return { applied: false, failureReason: `stale version: the editor is at ${editor.document.version}, not ${expected}` };
      }
      const applied = await editor.edit((builder) => {
        for (const e of edits ?? []) {
          builder.replace(e.range, e.newText);
        }
      });
      return applied ? { applied } : { applied, failureReason: 'the document changed before the edit could be applied' };
    }
  }
  return fallback(client, params);
}

/** What the language client itself does: check versions, then `workspace.applyEdit`. */
async function fallback(client: LanguageClient, params: ApplyWorkspaceEditParams): Promise<ApplyWorkspaceEditResult> {
  for (const change of params.edit.documentChanges ?? []) {
    if (TextDocumentEdit.is(change) && change.textDocument.version !== null) {
      const uri = client.protocol2CodeConverter.asUri(change.textDocument.uri).toString();
      const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
      if (doc !== undefined && doc.version !== change.textDocument.version) {
        return { applied: false, failureReason: `stale version: the editor is at ${doc.version}, not ${change.textDocument.version}` };
      }
    }
  }
  const edit = await client.protocol2CodeConverter.asWorkspaceEdit(params.edit);
  return { applied: await vscode.workspace.applyEdit(edit) };
}
