/**
 * The chat panel (a webview) and chat notifications: history from `mesh/chatHistory` when
 * it opens, new messages from `mesh/chatMessage`, and `mesh/chat` to send.
 */
import * as vscode from 'vscode';

import { chatPageHtml, entryHtml, makeNonce, parseFromWebview } from './chatView';
import type { ToWebview } from './chatView';
import type { Ctx } from './context';
import { errorText } from './errors';
import { EditorRequests, ProxyNotifications } from './protocol';
import type { ChatEntry } from './protocol';

export class Chat {
  private panel: vscode.WebviewPanel | undefined;

  constructor(private readonly ctx: Ctx) {
    ctx.on(ProxyNotifications.chatMessage, ({ entry }) => this.received(entry));
    ctx.own({
      dispose: () => {
        this.panel?.dispose();
      },
    });
  }

  /** Opens the panel, or brings it to the front. */
  open(): void {
    if (this.panel !== undefined) {
      this.panel.reveal();
      return;
    }
    const status = this.ctx.state.kind === 'running' ? this.ctx.state.status : undefined;
    const panel = vscode.window.createWebviewPanel('mesh.chat', 'Mesh Chat', vscode.ViewColumn.Beside, {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: [],
    });
    panel.webview.html = chatPageHtml({ cspSource: panel.webview.cspSource, nonce: makeNonce(), room: status?.room ?? '' });
    panel.webview.onDidReceiveMessage(async (raw: unknown) => {
      const msg = parseFromWebview(raw);
      if (msg?.type === 'ready') {
        await this.loadHistory();
      } else if (msg?.type === 'send') {
        try {
          await this.ctx.request(EditorRequests.chat, { text: msg.text });
          this.post({ type: 'sent' });
        } catch (e) {
          this.post({ type: 'error', message: `Not sent: ${errorText(e)}` });
        }
      }
    });
    panel.onDidDispose(() => {
      this.panel = undefined;
    });
    this.panel = panel;
  }

  private async loadHistory(): Promise<void> {
    try {
      const { messages } = await this.ctx.request(EditorRequests.chatHistory, {});
      this.post({ type: 'reset', html: messages.map((m) => entryHtml(m, this.mine(m))).join('') });
    } catch (e) {
      this.post({ type: 'error', message: `Cannot load the chat: ${errorText(e)}` });
    }
  }

  private received(entry: ChatEntry): void {
    if (this.panel !== undefined) {
      this.post({ type: 'append', html: entryHtml(entry, this.mine(entry)) });
      return;
    }
    if (!this.mine(entry)) {
      void vscode.window.showInformationMessage(`${entry.author}: ${entry.text}`, 'Open Chat').then((pick) => {
        if (pick !== undefined) {
          this.open();
        }
      });
    }
  }

  private mine(entry: ChatEntry): boolean {
    return entry.connId === this.ctx.selfConnId;
  }

  private post(msg: ToWebview): void {
    void this.panel?.webview.postMessage(msg);
  }
}
