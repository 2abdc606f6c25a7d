/**
 * Follow mode: while following someone, their moves (`mesh/follow` from the proxy) open
 * their file and scroll to what they see. Any move of the user's own — typing, clicking,
 * moving the caret — ends it (`mesh/stopFollowing`), as in Live Share.
 */
import * as vscode from 'vscode';

import type { Ctx } from './context';
import { errorText } from './errors';
import { EditorNotifications, EditorRequests, ProxyNotifications } from './protocol';
import type { FollowNotification, Participant } from './protocol';
import { participantsOf } from './status';

export class FollowMode {
  /** How many of our own reveals are in flight: their selection events are not the user's. */
  private revealing = 0;

  constructor(private readonly ctx: Ctx) {
    ctx.on(ProxyNotifications.follow, (p) => void this.reveal(p));
    ctx.on(ProxyNotifications.followStopped, ({ reason }) => {
      if (ctx.following !== undefined) {
        ctx.setFollowing(undefined);
        vscode.window.setStatusBarMessage(`$(eye-closed) Mesh: stopped following (${reason})`, 5000);
      }
    });
    ctx.own(
      vscode.window.onDidChangeTextEditorSelection((e) => {
        const byUser = e.kind === vscode.TextEditorSelectionChangeKind.Keyboard || e.kind === vscode.TextEditorSelectionChangeKind.Mouse;
        if (ctx.following !== undefined && this.revealing === 0 && byUser) {
          this.stoppedByUser();
        }
      }),
    );
    // The followed person left the room: nothing more will come.
    ctx.own(
      ctx.onDidChangeState((state) => {
        const f = ctx.following;
        if (f !== undefined && state.kind === 'running' && !state.status.participants.some((p) => p.connId === f.connId)) {
          ctx.setFollowing(undefined);
          vscode.window.setStatusBarMessage(`$(eye-closed) Mesh: ${f.name} left`, 5000);
        }
      }),
    );
  }

  /** Starts following a participant; asks whom when not given. */
  async follow(connId?: number): Promise<void> {
    const others = participantsOf(this.ctx.state).filter((p) => !p.you);
    let target: Participant | undefined = others.find((p) => p.connId === connId);
    if (target === undefined) {
      if (others.length === 0) {
        void vscode.window.showInformationMessage('Mesh: nobody else is in the session yet. Copy the join link and send it to someone.');
        return;
      }
      const pick = await vscode.window.showQuickPick(
        others.map((p) => ({ label: p.name, description: `${p.role} · ${p.client}`, participant: p })),
        { placeHolder: 'Follow whom?' },
      );
      target = pick?.participant;
    }
    if (target === undefined) {
      return;
    }
    try {
      await this.ctx.request(EditorRequests.follow, { connId: target.connId });
      this.ctx.setFollowing({ connId: target.connId, name: target.name });
    } catch (e) {
      void vscode.window.showErrorMessage(`Mesh: cannot follow ${target.name}: ${errorText(e)}`);
    }
  }

  /** Stops following (the user asked). */
  async stop(): Promise<void> {
    if (this.ctx.following === undefined) {
      return;
    }
    this.ctx.setFollowing(undefined);
    try {
      await this.ctx.request(EditorRequests.follow, { connId: null });
    } catch (e) {
      this.ctx.log.warn(`mesh/follow null: ${errorText(e)}`);
    }
  }

  private stoppedByUser(): void {
    const f = this.ctx.following;
    this.ctx.setFollowing(undefined);
    this.ctx.notify(EditorNotifications.stopFollowing, {});
    if (f !== undefined) {
      vscode.window.setStatusBarMessage(`$(eye-closed) Mesh: stopped following ${f.name}`, 4000);
    }
  }

  private async reveal(p: FollowNotification): Promise<void> {
    if (this.ctx.following === undefined) {
      return;
    }
    if (this.ctx.following.connId !== p.connId || this.ctx.following.name !== p.name) {
      this.ctx.setFollowing({ connId: p.connId, name: p.name });
    }
    this.revealing++;
    try {
      const uri = this.ctx.fromProtocolUri(p.uri);
      const current = vscode.window.activeTextEditor;
      const editor =
        current?.document.uri.toString() === uri.toString()
          ? current
          : await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri), { preview: false });
      const range = p.visibleRange ?? (p.selections?.[0] !== undefined ? { start: p.selections[0].head, end: p.selections[0].head } : undefined);
      if (range !== undefined) {
        const r = new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
        editor.revealRange(r, p.visibleRange !== undefined ? vscode.TextEditorRevealType.AtTop : vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      }
    } catch (e) {
      this.ctx.log.warn(`follow: cannot show ${p.uri}: ${errorText(e)}`);
    } finally {
      // Selection events of the reveal arrive after it resolves; let them pass first.
      setTimeout(() => this.revealing--, 100);
    }
  }
}
