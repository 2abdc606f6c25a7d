/**
 * The safety net's editor side: `mesh/documentHash` answers with the buffer's version and
 * the SHA-256 of its text, so the proxy can tell when the editor and the room drifted apart.
 */
import * as vscode from 'vscode';

import type { Ctx } from './context';
import { sha256Hex } from './hash';
import { ProxyRequests } from './protocol';
import type { DocumentHashResult } from './protocol';

export function registerDocumentHash(ctx: Ctx): void {
  ctx.handle(ProxyRequests.documentHash, ({ uri }): DocumentHashResult => {
    const key = ctx.fromProtocolUri(uri).toString();
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === key);
    if (doc === undefined) {
      // A JSON-RPC error: the proxy asked about a document the editor does not have open.
      throw new Error(`document not open in the editor: ${uri}`);
    }
    return { version: doc.version, sha256: sha256Hex(doc.getText()) };
  });
}
