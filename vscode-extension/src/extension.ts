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
import { Debugging } from './debug';
import { registerDocumentHash } from './documentHash';
import { FollowMode } from './follow';
import { HostControl } from './host';
import { LocalPresence } from './localPresence';
import { ParticipantsView } from './participants';
import type { Participant } from './protocol';
import { Runs } from './run';
import { GhostAsk } from './ghost';
import { GhostSuggestions } from './ghostSuggestions';
import { Session } from './session';
import { SharedBreakpointMarks } from './sharedBreakpoints';
import { StatusBar } from './statusBar';

let ctx: Ctx | undefined;

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
  const ghost = new GhostAsk(c);
  const suggestions = new GhostSuggestions(c);
  const debugging = new Debugging(c);
  new RemoteCursors(c);
  new SharedBreakpointMarks(c);
  new LocalPresence(c);
  new ParticipantsView(c);
  const host = new HostControl(c);

  const command = (id: string, run: (...args: unknown[]) => unknown): void => {
    c.own(vscode.commands.registerCommand(id, run));
  };
  command('mesh.share', () => session.share());
  command('mesh.join', (link?: unknown) => session.join(typeof link === 'string' ? link : undefined));
  command('mesh.leave', () => session.leave());
  command('mesh.copyLink', () => session.copyLink());
  command('mesh.resolveConflict', () => session.resolveConflict());
  command('mesh.follow', (connId?: unknown) => follow.follow(typeof connId === 'number' ? connId : undefined));
  command('mesh.stopFollowing', () => follow.stop());
  command('mesh.openChat', () => chat.open());
  command('mesh.showActions', () => statusBar.showActions());
  command('mesh.showLog', () => log.show());
  command('mesh.retry', () => session.retry());
  command('mesh.openSettings', () => vscode.commands.executeCommand('workbench.action.openSettings', '@ext:' + context.extension.id));
  command('mesh.run', (uri?: unknown) => runs.run(uri instanceof vscode.Uri ? uri : undefined));
  command('mesh.stop', () => runs.stop());
  command('mesh.askGhost', (question?: unknown, mode?: unknown) =>
    ghost.ask(typeof question === 'string' ? question : undefined, mode === 'explain' || mode === 'suggest' || mode === 'write' ? mode : undefined),
  );
  command('mesh.ghostSuggestions', () => suggestions.list());
  command('mesh.ghostAccept', (id?: unknown) => suggestions.decide('accept', typeof id === 'number' || id instanceof vscode.Uri ? id : undefined));
  command('mesh.ghostReject', (id?: unknown) => suggestions.decide('reject', typeof id === 'number' || id instanceof vscode.Uri ? id : undefined));
  command('mesh.ghostUndo', () => suggestions.command('undo'));
  command('mesh.ghostCancel', () => suggestions.command('cancel'));
  command('mesh.debug', (uri?: unknown) => debugging.debug(uri instanceof vscode.Uri ? uri : undefined));
  command('mesh.admit', () => host.answer(true));
  command('mesh.refuse', () => host.answer(false));
  command('mesh.manageParticipants', (p?: unknown) => host.manage(isParticipant(p) ? p : undefined));
  command('mesh.makeWriter', (p?: unknown) => (isParticipant(p) ? host.setRole(p, 'writer') : host.manage()));
  command('mesh.makeReader', (p?: unknown) => (isParticipant(p) ? host.setRole(p, 'reader') : host.manage()));
  command('mesh.makeHost', (p?: unknown) => (isParticipant(p) ? host.setRole(p, 'host') : host.manage()));
  command('mesh.kick', (p?: unknown) => (isParticipant(p) ? host.kick(p) : host.manage()));
  command('mesh.toggleApproval', () => host.toggleApproval());
  command('mesh.manageLinks', () => host.links());
  command('mesh.showAudit', () => host.audit());
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

/** A participant handed to a command by the Participants view. */
function isParticipant(p: unknown): p is Participant {
  return typeof p === 'object' && p !== null && typeof (p as Participant).connId === 'number' && typeof (p as Participant).name === 'string';
}

export async function deactivate(): Promise<void> {
  await ctx?.stopClient();
  ctx = undefined;
}

/**
 * Hooks for the end-to-end test, active only when the extension host's environment has
 * `MESH_TEST_OUT` (a directory): `mesh._test.documentText` writes the text of every open
 * file, the session state, the breakpoints (1-based lines) and the active debug session to
 * `MESH_TEST_OUT/document.json`. `mesh-proxy dap` then logs to `MESH_TEST_OUT` too (debug.ts).
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
        breakpoints: vscode.debug.breakpoints
          .filter((b): b is vscode.SourceBreakpoint => b instanceof vscode.SourceBreakpoint)
          .map((b) => ({ path: b.location.uri.fsPath, line: b.location.range.start.line + 1, enabled: b.enabled })),
        debugSession: vscode.debug.activeDebugSession === undefined ? null : { type: vscode.debug.activeDebugSession.type, name: vscode.debug.activeDebugSession.name },
        writtenAt: Date.now(),
      };
      const file = path.join(out, 'document.json');
      writeFileSync(`${file}.tmp`, JSON.stringify(report, null, 2));
      renameSync(`${file}.tmp`, file);
    }),
  );
}
