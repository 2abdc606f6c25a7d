/**
 * The "Participants" view: everyone in the room with their colour, role and editor. A click
 * follows that person.
 */
import * as vscode from 'vscode';

import type { Ctx } from './context';
import { normaliseColor } from './cursorModel';
import type { Participant } from './protocol';
import { participantsOf } from './status';

/** A round swatch of a participant's colour, as an inline SVG. */
export function colorIcon(color: string): vscode.Uri {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><circle cx="8" cy="8" r="6" fill="${normaliseColor(color)}"/></svg>`;
  return vscode.Uri.parse(`data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`);
}

export class ParticipantsView implements vscode.TreeDataProvider<Participant> {
  private readonly changed = new vscode.EventEmitter<undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly view: vscode.TreeView<Participant>;

  constructor(private readonly ctx: Ctx) {
    ctx.own(this.changed);
    this.view = ctx.own(vscode.window.createTreeView('mesh.participants', { treeDataProvider: this, showCollapseAll: false }));
    ctx.own(ctx.onDidChangeState(() => this.refresh()));
    ctx.own(ctx.onDidChangeFollowing(() => this.refresh()));
    this.refresh();
  }

  private refresh(): void {
    const n = participantsOf(this.ctx.state).length;
    this.view.badge = n > 1 ? { value: n, tooltip: `${n} participants` } : undefined;
    this.changed.fire(undefined);
  }

  getChildren(element?: Participant): Participant[] {
    return element === undefined ? participantsOf(this.ctx.state) : [];
  }

  getTreeItem(p: Participant): vscode.TreeItem {
    // A signed-in person's name came from the organisation's sign-in: marked, so a typed
    // look-alike (shown without the mark) is told apart.
    const mark = p.verified === true ? ' ✓' : '';
    const item = new vscode.TreeItem(`${p.name}${mark}${p.you ? ' (you)' : ''}`, vscode.TreeItemCollapsibleState.None);
    const followed = this.ctx.following?.connId === p.connId;
    item.id = String(p.connId);
    item.iconPath = colorIcon(p.color);
    item.description = [followed ? 'following' : '', p.role, p.client].filter((s) => s !== '').join(' · ');
    const unverified = p.verified === true ? ' (signed in: name verified)' : ' (name not verified)';
    item.tooltip = `${p.name}${unverified} — ${p.role}, ${p.client}${p.you ? '' : '\nClick to follow.'}`;
    // The host's menu (roles, kick) shows on others when we are the host.
    const hosting = this.ctx.state.kind === 'running' && this.ctx.state.status.role === 'host';
    item.contextValue = p.you ? 'self' : hosting ? `participant-host-${p.role}` : 'participant';
    if (!p.you) {
      item.command = { title: 'Follow', command: 'mesh.follow', arguments: [p.connId] };
    }
    return item;
  }
}
