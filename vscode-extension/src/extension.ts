/**
 * The entry point: builds the `Ctx`, the features around it and the commands. The proxy
 * starts on first use (share or join), not at startup, so a window that never collaborates
 * runs no extra process.
 */
import { writeFileSync, renameSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

import { Chat } from './chat';
import { Ctx } from './context';
import { RemoteCursors } from './cursors';
import { registerDocumentHash } from './documentHash';
import { FollowMode } from './follow';
import { LocalPresence } from './localPresence';
import { ParticipantsView } from './participants';
import { Runs } from './run';
import { Session } from './session';
import { StatusBar } from './statusBar';

let ctx: Ctx | undefined;

/** What Debug says until the server debugs programs. */
const DEBUG_NOT_SUPPORTED =
  'Mesh: shared debugging is not supported by the mesh server yet. It will debug the project in a container every participant watches live.';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Mesh', { log: true });
  const c = new Ctx(context, log);
  ctx = c;
  context.subscriptions.push(c);

  registerDocumentHash(c);
  const session = new Session(c);
  const statusBar = new StatusBar(c);
  const follow = new FollowMode(c);
  const chat = new Chat(c);
  const runs = new Runs(c);
  new RemoteCursors(c);
  new LocalPresence(c);
  new ParticipantsView(c);

  const command = (id: string, run: (...args: unknown[]) => unknown): void => {
    c.own(vscode.commands.registerCommand(id, run));
  };
  command('mesh.share', () => session.share());
  command('mesh.join', (link?: unknown) => session.join(typeof link === 'string' ? link : undefined));
  command('mesh.leave', () => session.leave());
  command('mesh.copyLink', () => session.copyLink());
  command('mesh.follow', (connId?: unknown) => follow.follow(typeof connId === 'number' ? connId : undefined));
  command('mesh.stopFollowing', () => follow.stop());
  command('mesh.openChat', () => chat.open());
  command('mesh.showActions', () => statusBar.showActions());
  command('mesh.showLog', () => log.show());
  command('mesh.retry', () => session.retry());
  command('mesh.openSettings', () => vscode.commands.executeCommand('workbench.action.openSettings', '@ext:' + context.extension.id));
  command('mesh.run', (uri?: unknown) => runs.run(uri instanceof vscode.Uri ? uri : undefined));
  command('mesh.stop', () => runs.stop());
  command('mesh.debug', () => vscode.window.showInformationMessage(DEBUG_NOT_SUPPORTED));
  registerTestHooks(c);

  // vscode://mesh.mesh-vscode/join?link=...
  c.own(
    vscode.window.registerUriHandler({
      handleUri(uri: vscode.Uri) {
        const link = new URLSearchParams(uri.query).get('link');
        if (uri.path === '/join' && link !== null) {
          void session.join(link);
        } else {
          void vscode.window.showErrorMessage(`Mesh: not a mesh link: ${uri.toString(true)}`);
        }
      },
    }),
  );

  // New settings reach a running proxy through a restart, which only an idle proxy can take.
  c.own(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('mesh') || !c.running) {
        return;
      }
      if (c.state.kind === 'running' && c.state.status.state !== 'idle') {
        void vscode.window.showInformationMessage('Mesh: the new settings apply to the next session.');
      } else {
        void c.stopClient();
      }
    }),
  );

  c.ownClient();
  void session.resumePendingJoin();
}

export async function deactivate(): Promise<void> {
  await ctx?.stopClient();
  ctx = undefined;
}

/**
 * Hooks for the end-to-end test, active only when the extension host's environment has
 * `MESH_TEST_OUT` (a directory): `mesh._test.documentText` writes the text of every open
 * file and the session state to `MESH_TEST_OUT/document.json`.
 */
function registerTestHooks(c: Ctx): void {
  const out = process.env.MESH_TEST_OUT;
  if (out === undefined || out === '') {
    return;
  }
  void vscode.commands.executeCommand('setContext', 'mesh.testMode', true);
  c.own(
    vscode.commands.registerCommand('mesh._test.documentText', () => {
      const report = {
        active: vscode.window.activeTextEditor?.document.uri.toString() ?? null,
        documents: vscode.workspace.textDocuments
          .filter((d) => d.uri.scheme === 'file')
          .map((d) => ({ uri: d.uri.toString(), path: d.uri.fsPath, version: d.version, dirty: d.isDirty, text: d.getText() })),
        state: c.state,
        following: c.following ?? null,
        writtenAt: Date.now(),
      };
      const file = path.join(out, 'document.json');
      writeFileSync(`${file}.tmp`, JSON.stringify(report, null, 2));
      renameSync(`${file}.tmp`, file);
    }),
  );
}
