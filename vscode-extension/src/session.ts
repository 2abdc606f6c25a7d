/**
 * The session commands — share, join, leave, copy link — with their progress, errors and
 * the buttons that fix them.
 */
import * as vscode from 'vscode';

import type { Ctx } from './context';
import { type Fix, classify, errorText, fixesFor } from './errors';
import { looksLikeJoinLink, parseJoinLink, vscodeJoinUri } from './link';
import { EditorRequests } from './protocol';
import { inSession } from './status';

/** A join asked for before a folder was open, resumed in the folder's window. */
const PENDING_JOIN_KEY = 'mesh.pendingJoin';
/** A pending join older than this is stale: the user moved on. */
const PENDING_JOIN_MAX_AGE_MS = 10 * 60 * 1000;

/** How long to wait for the clipboard: in a browser, reading it may wait on a permission. */
const CLIPBOARD_TIMEOUT_MS = 1000;

/** The clipboard's text, or '' when it cannot be read soon. */
async function readClipboard(): Promise<string> {
  const timeout = new Promise<string>((resolve) => setTimeout(() => resolve(''), CLIPBOARD_TIMEOUT_MS));
  return Promise.race([Promise.resolve(vscode.env.clipboard.readText()).catch(() => ''), timeout]);
}

export class Session {
  /** What "Retry" repeats. */
  private lastFailed: (() => Promise<void>) | undefined;

  constructor(private readonly ctx: Ctx) {}

  /** Shares the workspace folder and puts the join link on the clipboard. */
  async share(): Promise<void> {
    const folder = await this.requireFolder('share');
    if (folder === undefined) {
      return;
    }
    if (inSession(this.ctx.state) && !(await this.confirmLeave('share this folder'))) {
      return;
    }
    const config = vscode.workspace.getConfiguration('mesh');
    const server = config.get<string>('serverUrl', '').trim();
    const name = config.get<string>('displayName', '').trim();
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Mesh: sharing ${folder.name}...` },
        () => this.ctx.request(EditorRequests.share, { server: server === '' ? undefined : server, name: name === '' ? undefined : name }),
      );
      await vscode.env.clipboard.writeText(result.link);
      void vscode.window
        .showInformationMessage(`Mesh: sharing ${folder.name}. The join link is on your clipboard.`, 'Copy Read-only Link', 'Open Chat')
        .then(async (pick) => {
          if (pick === 'Copy Read-only Link') {
            await vscode.env.clipboard.writeText(result.readLink);
          } else if (pick === 'Open Chat') {
            await vscode.commands.executeCommand('mesh.openChat');
          }
        });
    } catch (e) {
      this.fail(e, () => this.share());
    }
  }

  /** Joins a session: from a link given, or one the user pastes. */
  async join(given?: string): Promise<void> {
    let text = given;
    if (text === undefined) {
      const clip = (await readClipboard()).trim();
      text = await vscode.window.showInputBox({
        title: 'Mesh: Join Session',
        prompt: 'Paste the join link someone shared with you',
        placeHolder: 'http://host:7420/join/ROOM?token=...',
        value: looksLikeJoinLink(clip) ? clip : '',
        ignoreFocusOut: true,
        validateInput: (v) => (v.trim() === '' ? undefined : ((r) => (r.ok ? undefined : r.error))(parseJoinLink(v))),
      });
      if (text === undefined) {
        return;
      }
    }
    const parsed = parseJoinLink(text);
    if (!parsed.ok) {
      this.fail(new Error(parsed.error), () => this.join());
      return;
    }
    const link = parsed.value.link;
    const folder = await this.requireFolder('join', link);
    if (folder === undefined) {
      return;
    }
    if (inSession(this.ctx.state) && !(await this.confirmLeave('join another session'))) {
      return;
    }
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Mesh: joining ${parsed.value.server}...` },
        () => this.ctx.request(EditorRequests.join, { link }),
      );
      const files = result.files === 1 ? '1 file' : `${result.files} files`;
      vscode.window.setStatusBarMessage(`$(check) Mesh: joined (${files})`, 5000);
      if (result.conflicts.length > 0) {
        const list = result.conflicts.slice(0, 5).join(', ') + (result.conflicts.length > 5 ? ', ...' : '');
        void vscode.window.showWarningMessage(
          `Mesh: joined, but ${result.conflicts.length} local file(s) differ from the room's and were left as they are: ${list}`,
        );
      }
    } catch (e) {
      this.fail(e, () => this.join(link));
    }
  }

  /** Joins a link left by a window that had no folder open, if recent. */
  async resumePendingJoin(): Promise<void> {
    const pending = this.ctx.extension.globalState.get<{ link: string; at: number }>(PENDING_JOIN_KEY);
    if (pending === undefined || vscode.workspace.workspaceFolders === undefined) {
      return;
    }
    await this.ctx.extension.globalState.update(PENDING_JOIN_KEY, undefined);
    if (Date.now() - pending.at < PENDING_JOIN_MAX_AGE_MS) {
      await this.join(pending.link);
    }
  }

  async leave(): Promise<void> {
    if (!inSession(this.ctx.state)) {
      return;
    }
    try {
      await this.ctx.request(EditorRequests.leave, {});
      this.ctx.setFollowing(undefined);
      vscode.window.setStatusBarMessage('$(debug-disconnect) Mesh: left the session', 4000);
    } catch (e) {
      this.fail(e, () => this.leave());
    }
  }

  async copyLink(): Promise<void> {
    const status = this.ctx.state.kind === 'running' ? this.ctx.state.status : undefined;
    if (status?.link === undefined) {
      void vscode.window.showInformationMessage('Mesh: not in a session. Share a folder first.', 'Share Folder').then((pick) => {
        if (pick !== undefined) {
          void this.share();
        }
      });
      return;
    }
    const choices = [
      { label: 'Join link', description: 'others can edit', value: status.link },
      ...(status.readLink === undefined ? [] : [{ label: 'Read-only link', description: 'others can only watch', value: status.readLink }]),
      { label: 'VS Code link', description: 'opens VS Code and joins', value: vscodeJoinUri(this.ctx.extension.extension.id, status.link, vscode.env.uriScheme) },
    ];
    const pick = await vscode.window.showQuickPick(choices, { placeHolder: 'Copy which link?' });
    if (pick !== undefined) {
      await vscode.env.clipboard.writeText(pick.value);
      vscode.window.setStatusBarMessage(`$(copy) Mesh: ${pick.label.toLowerCase()} copied`, 3000);
    }
  }

  /**
   * Resolves a conflict: the file of the active editor when it is one, else the one the user
   * picks. Its text is merged with the room's later changes and shared.
   */
  async resolveConflict(): Promise<void> {
    const status = this.ctx.state.kind === 'running' ? this.ctx.state.status : undefined;
    const conflicts = status?.conflicts ?? [];
    if (conflicts.length === 0) {
      void vscode.window.showInformationMessage('Mesh: no file is in conflict.');
      return;
    }
    const active = vscode.window.activeTextEditor?.document.uri;
    const activePath = active === undefined ? undefined : vscode.workspace.asRelativePath(active, false);
    let path = conflicts.find((c) => c === activePath);
    if (path === undefined) {
      path = await vscode.window.showQuickPick(conflicts, {
        placeHolder: "Resolve which file? (take what you need from .mesh/conflicts/<file> first)",
      });
    }
    if (path === undefined) {
      return;
    }
    try {
      await this.ctx.request(EditorRequests.resolve, { path });
      vscode.window.setStatusBarMessage(`$(check) Mesh: ${path} resolved; your text is shared`, 4000);
    } catch (e) {
      void vscode.window.showErrorMessage(`Mesh: cannot resolve ${path}: ${errorText(e)}`);
    }
  }

  /** Repeats what failed last, or restarts the proxy. */
  async retry(): Promise<void> {
    const again = this.lastFailed;
    this.lastFailed = undefined;
    if (again !== undefined) {
      await again();
    } else {
      await this.ctx.ensureClient().catch((e: unknown) => this.fail(e, () => this.retry()));
    }
  }

  /** Shows an error with the buttons that fix it. */
  fail(err: unknown, retry: () => Promise<void>): void {
    const message = errorText(err);
    this.ctx.log.error(message);
    this.lastFailed = retry;
    const fixes: Fix[] = fixesFor(classify(message));
    void vscode.window.showErrorMessage(`Mesh: ${message}`, ...fixes).then(async (pick) => {
      switch (pick) {
        case 'Retry':
          await this.retry();
          break;
        case 'Open Settings':
          await vscode.commands.executeCommand('mesh.openSettings');
          break;
        case 'Show Log':
          this.ctx.log.show();
          break;
        case 'Enter Another Link':
          await this.join();
          break;
        case undefined:
          break;
      }
    });
  }

  private async requireFolder(what: 'share' | 'join', link?: string): Promise<vscode.WorkspaceFolder | undefined> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (folder !== undefined) {
      return folder;
    }
    const message =
      what === 'share' ? 'Mesh: open the folder you want to share first.' : 'Mesh: open a folder to join into (an empty one is best).';
    const pick = await vscode.window.showErrorMessage(message, 'Open Folder');
    if (pick !== undefined) {
      if (link !== undefined) {
        await this.ctx.extension.globalState.update(PENDING_JOIN_KEY, { link, at: Date.now() });
      }
      await vscode.commands.executeCommand('vscode.openFolder');
    }
    return undefined;
  }

  private async confirmLeave(what: string): Promise<boolean> {
    const pick = await vscode.window.showWarningMessage(`Mesh: leave the current session to ${what}?`, { modal: true }, 'Leave');
    if (pick !== 'Leave') {
      return false;
    }
    await this.ctx.request(EditorRequests.leave, {});
    return true;
  }
}
