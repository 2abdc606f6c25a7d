/**
 * "Mesh: Ghost Suggestions": the ghost's pending suggestions (`mesh/ghostState`) in a quick
 * pick; choosing one opens a diff of the file against the file with the suggestion applied
 * (a read-only `mesh-ghost:` document), and writers get Accept / Reject (a notification, the
 * diff's title bar, and the commands), sent as `mesh/ghost`. Readers see the preview only;
 * the proxy and the server refuse their decisions anyway.
 */
import * as vscode from 'vscode';

import type { Ctx } from './context';
import { errorText } from './errors';
import { type PendingSuggestion, applyGhostEdits, describeSuggestion, pendingSuggestions } from './ghostSuggestion';
import { EditorRequests, type GhostStateParams, type GhostSuggestion, ProxyNotifications } from './protocol';

/** The scheme of the previews: `mesh-ghost:/<room path>?<suggestion id>`. */
export const GHOST_SCHEME = 'mesh-ghost';

export class GhostSuggestions implements vscode.TextDocumentContentProvider {
  private state: GhostStateParams = { ghosts: [] };
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  /** Suggestions already announced, so each is announced once. */
  private readonly announced = new Set<number>();

  constructor(private readonly ctx: Ctx) {
    ctx.own(this.changed);
    ctx.own(vscode.workspace.registerTextDocumentContentProvider(GHOST_SCHEME, this));
    ctx.on(ProxyNotifications.ghostState, (state) => this.update(state));
    ctx.own(ctx.onDidChangeState(() => this.setContext()));
  }

  private get canWrite(): boolean {
    const s = this.ctx.state;
    return s.kind === 'running' && (s.status.role === 'writer' || s.status.role === 'host');
  }

  private setContext(): void {
    void vscode.commands.executeCommand('setContext', 'mesh.canWrite', this.canWrite);
    void vscode.commands.executeCommand('setContext', 'mesh.ghostSuggestions', pendingSuggestions(this.state).length > 0);
  }

  private update(state: GhostStateParams): void {
    this.state = state;
    this.setContext();
    // Open previews follow the newest state (a suggestion gone shows as such).
    for (const doc of vscode.workspace.textDocuments) {
      if (doc.uri.scheme === GHOST_SCHEME) {
        this.changed.fire(doc.uri);
      }
    }
    // Ids that are no longer pending are forgotten: a new room numbers its requests from 1.
    const pending = pendingSuggestions(state);
    for (const id of [...this.announced]) {
      if (!pending.some((p) => p.suggestion.id === id)) {
        this.announced.delete(id);
      }
    }
    for (const p of pending) {
      if (this.announced.has(p.suggestion.id)) {
        continue;
      }
      this.announced.add(p.suggestion.id);
      void vscode.window
        .showInformationMessage(`Mesh: ${p.ghost} suggests a change for ${p.suggestion.asker} (#${p.suggestion.id}).`, 'Preview')
        .then((choice) => (choice === 'Preview' ? this.preview(p.suggestion) : undefined));
    }
  }

  private find(id: number): GhostSuggestion | undefined {
    return pendingSuggestions(this.state).find((p) => p.suggestion.id === id)?.suggestion;
  }

  /** The preview's text: the file as it is now with the suggestion's edits applied. */
  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const id = Number(uri.query);
    const path = uri.path.replace(/^\//, '');
    const s = this.find(id);
    if (!s) {
      return `Suggestion #${id} is no longer pending (accepted, rejected or dropped).\n`;
    }
    if (s.omitted) {
      return `Suggestion #${id} is too large to preview: its change is in the chat. Accepting still works.\n`;
    }
    const applied = applyGhostEdits(await this.currentText(s, path), s.edits, path);
    return applied.ok ? applied.text : `Suggestion #${id} cannot be applied: ${applied.error}\n`;
  }

  /** The file's text now: its open document, else the file on disk, else none (a new file). */
  private async currentText(s: GhostSuggestion, path: string): Promise<string | undefined> {
    const uri = this.fileUri(s, path);
    if (!uri) {
      return undefined;
    }
    const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    if (open) {
      return open.getText();
    }
    try {
      return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    } catch {
      return undefined;
    }
  }

  private fileUri(s: GhostSuggestion, path: string): vscode.Uri | undefined {
    const f = s.files.find((x) => x.path === path && x.uri) ?? s.edits.find((e) => e.path === path && e.uri);
    return f?.uri ? vscode.Uri.parse(f.uri) : undefined;
  }

  /** Lists the pending suggestions; the chosen one is previewed. */
  async list(): Promise<void> {
    const pending = pendingSuggestions(this.state);
    if (pending.length === 0) {
      void vscode.window.showInformationMessage('Mesh: the ghost has no suggestion waiting. Ask it with "Mesh: Ask Ghost About Selection".');
      return;
    }
    const picked = await vscode.window.showQuickPick(
      pending.map((p) => ({ ...describeSuggestion(p), p })),
      { placeHolder: 'The ghost\'s suggestions: choose one to preview' },
    );
    if (picked) {
      await this.preview(picked.p.suggestion);
    }
  }

  /** Opens a diff of each file the suggestion changes, then offers Accept / Reject to writers. */
  async preview(s: GhostSuggestion): Promise<void> {
    const paths = [...new Set(s.edits.map((e) => e.path))];
    for (const path of paths) {
      const right = vscode.Uri.from({ scheme: GHOST_SCHEME, path: `/${path}`, query: String(s.id) });
      const left = this.fileUri(s, path) ?? vscode.Uri.from({ scheme: GHOST_SCHEME, path: `/${path}`, query: 'none' });
      await vscode.commands.executeCommand('vscode.diff', left, right, `Ghost suggestion #${s.id}: ${path}`, { preview: paths.length === 1 });
    }
    if (paths.length === 0) {
      void vscode.window.showInformationMessage(`Mesh: suggestion #${s.id} is too large to preview; its change is in the chat.`);
    }
    if (!this.canWrite) {
      return;
    }
    const choice = await vscode.window.showInformationMessage(`Mesh: suggestion #${s.id} from ${s.asker}'s request`, 'Accept', 'Reject');
    if (choice === 'Accept' || choice === 'Reject') {
      await this.decide(choice === 'Accept' ? 'accept' : 'reject', s.id);
    }
  }

  /** Undoes the ghost's newest change, or cancels its newest request going (writers). */
  async command(kind: 'undo' | 'cancel'): Promise<void> {
    try {
      await this.ctx.request(EditorRequests.ghost, kind === 'undo' ? { kind: 'undo' } : { kind: 'cancel' });
      void vscode.window.setStatusBarMessage(`Mesh: ${kind === 'undo' ? 'asked the ghost to undo its last change' : 'cancelled the ghost\'s request'}`, 5000);
    } catch (e) {
      void vscode.window.showErrorMessage(`Mesh: ${errorText(e)}`);
    }
  }

  /** Accepts or rejects suggestion `id`: the one previewed in the active editor, else picked. */
  async decide(kind: 'accept' | 'reject', id?: number | vscode.Uri): Promise<void> {
    let suggestion = typeof id === 'number' ? id : undefined;
    const uri = id instanceof vscode.Uri ? id : vscode.window.activeTextEditor?.document.uri;
    if (suggestion === undefined && uri?.scheme === GHOST_SCHEME && /^\d+$/.test(uri.query)) {
      suggestion = Number(uri.query);
    }
    if (suggestion === undefined) {
      const pending = pendingSuggestions(this.state);
      const picked = await vscode.window.showQuickPick(
        pending.map((p: PendingSuggestion) => ({ ...describeSuggestion(p), id: p.suggestion.id })),
        { placeHolder: `Which suggestion to ${kind}?` },
      );
      if (!picked) {
        return;
      }
      suggestion = picked.id;
    }
    try {
      await this.ctx.request(EditorRequests.ghost, { kind, suggestion });
      void vscode.window.setStatusBarMessage(`Mesh: ${kind === 'accept' ? 'accepted' : 'rejected'} suggestion #${suggestion}`, 5000);
    } catch (e) {
      void vscode.window.showErrorMessage(`Mesh: ${errorText(e)}`);
    }
  }
}
