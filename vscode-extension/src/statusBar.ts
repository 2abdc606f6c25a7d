/** The status bar item: connection state and head count; a click offers the actions. */
import * as vscode from 'vscode';

import type { Ctx } from './context';
import { actionsFor, statusBarView } from './status';

export class StatusBar {
  private readonly item: vscode.StatusBarItem;

  constructor(private readonly ctx: Ctx) {
    this.item = ctx.own(vscode.window.createStatusBarItem('mesh.status', vscode.StatusBarAlignment.Left, 100));
    this.item.name = 'Mesh';
    this.item.command = 'mesh.showActions';
    ctx.own(ctx.onDidChangeState(() => this.update()));
    ctx.own(ctx.onDidChangeFollowing(() => this.update()));
    this.update();
    this.item.show();
  }

  private update(): void {
    const view = statusBarView(this.ctx.state, this.ctx.following?.name);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }

  /** The quick pick behind the item. */
  async showActions(): Promise<void> {
    const actions = actionsFor(this.ctx.state, this.ctx.following?.name);
    const pick = await vscode.window.showQuickPick(actions, { placeHolder: statusBarView(this.ctx.state).tooltip.split('\n')[0] });
    if (pick !== undefined) {
      await vscode.commands.executeCommand(pick.command);
    }
  }
}
