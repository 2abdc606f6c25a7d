/**
 * `Ctx`, the one object that owns the extension's state and every disposable: the language
 * client running `mesh-proxy lsp`, the session state, and typed access to the `mesh/*`
 * methods. Features get the `Ctx` and subscribe to it; none of them holds the client, so
 * restarting the proxy never leaves a feature talking to a dead one.
 */
import * as vscode from 'vscode';
import { ApplyWorkspaceEditRequest, CloseAction, ErrorAction, LanguageClient, State, TransportKind } from 'vscode-languageclient/node';
import type { LanguageClientOptions, ServerOptions } from 'vscode-languageclient/node';

import { applyWorkspaceEdit } from './applyEdit';
import { errorText } from './errors';
import {
  type NotificationDescriptor,
  type ParamsOf,
  ProxyNotifications,
  type RequestDescriptor,
  type ResultOf,
  type Status,
} from './protocol';
import { checkProxy, proxyEnvironment, resolveProxy } from './proxyBinary';
import { type SessionState, inSession } from './status';

/** Who the local user follows. */
export interface Following {
  connId: number;
  name: string;
}

/** A handler for a request the proxy sends to the editor. */
type ProxyRequestHandler<D> = (params: ParamsOf<D>) => ResultOf<D> | Promise<ResultOf<D>>;

export class Ctx implements vscode.Disposable {
  /** Everything that lives as long as the extension. */
  private readonly disposables: vscode.Disposable[] = [];
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient> | undefined;
  /** Set while the extension stops the client itself, so the stop is not reported as a crash. */
  private stopping = false;
  private readonly emitters = new Map<string, vscode.EventEmitter<unknown>>();
  private readonly requestHandlers = new Map<string, (params: unknown) => unknown>();
  private readonly stateEmitter = this.own(new vscode.EventEmitter<SessionState>());
  private readonly followingEmitter = this.own(new vscode.EventEmitter<Following | undefined>());
  private currentState: SessionState = { kind: 'stopped' };
  private currentFollowing: Following | undefined;

  /** Fires whenever `state` changes. */
  readonly onDidChangeState = this.stateEmitter.event;
  /** Fires whenever `following` changes. */
  readonly onDidChangeFollowing = this.followingEmitter.event;

  constructor(
    readonly extension: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
  ) {
    this.own(log);
    for (const d of Object.values(ProxyNotifications)) {
      this.emitters.set(d.method, this.own(new vscode.EventEmitter<unknown>()));
    }
    // The proxy's own status is the truth about the session once it runs.
    this.on(ProxyNotifications.status, (status) => this.setStatus(status));
    this.on(ProxyNotifications.participants, ({ participants }) => {
      if (this.currentState.kind === 'running') {
        this.setStatus({ ...this.currentState.status, participants });
      }
    });
  }

  /** Owns the features' disposables; call last in `activate`, so the proxy stops first. */
  ownClient(): void {
    this.own({ dispose: () => void this.stopClient() });
  }

  /** Takes ownership of a disposable: it is disposed with the extension. */
  own<T extends vscode.Disposable>(d: T): T {
    this.disposables.push(d);
    return d;
  }

  get state(): SessionState {
    return this.currentState;
  }

  get following(): Following | undefined {
    return this.currentFollowing;
  }

  /** The local user's connection id in the room, when known. */
  get selfConnId(): number | undefined {
    return this.currentState.kind === 'running' ? this.currentState.status.you : undefined;
  }

  /** True while the proxy runs and answers. */
  get running(): boolean {
    return this.client?.isRunning() ?? false;
  }

  setState(state: SessionState): void {
    const wasInSession = inSession(this.currentState);
    this.currentState = state;
    void vscode.commands.executeCommand('setContext', 'mesh.inSession', inSession(state));
    void vscode.commands.executeCommand('setContext', 'mesh.connected', state.kind === 'running' && state.status.state === 'connected');
    void vscode.commands.executeCommand('setContext', 'mesh.isHost', state.kind === 'running' && state.status.role === 'host');
    if (wasInSession && !inSession(state)) {
      this.setFollowing(undefined);
    }
    this.stateEmitter.fire(state);
  }

  setFollowing(following: Following | undefined): void {
    this.currentFollowing = following;
    void vscode.commands.executeCommand('setContext', 'mesh.following', following !== undefined);
    this.followingEmitter.fire(following);
  }

  private setStatus(status: Status): void {
    this.setState({ kind: 'running', status });
  }

  /** Subscribes to a notification from the proxy; works across proxy restarts. */
  on<D extends NotificationDescriptor<unknown>>(d: D, listener: (params: ParamsOf<D>) => void): vscode.Disposable {
    const emitter = this.emitters.get(d.method);
    if (emitter === undefined) {
      throw new Error(`${d.method} is not a notification the proxy sends`);
    }
    return this.own(emitter.event((p) => listener(p as ParamsOf<D>)));
  }

  /** Answers a request from the proxy; one handler per method. */
  handle<D extends RequestDescriptor<unknown, unknown>>(d: D, handler: ProxyRequestHandler<D>): void {
    this.requestHandlers.set(d.method, handler as (params: unknown) => unknown);
  }

  /** Sends a request to the proxy, starting it first if needed. */
  async request<D extends RequestDescriptor<unknown, unknown>>(d: D, params: ParamsOf<D>): Promise<ResultOf<D>> {
    const client = await this.ensureClient();
    return client.sendRequest<ResultOf<D>>(d.method, params);
  }

  /** Sends a notification to the proxy if it runs; dropped otherwise (it would be stale). */
  notify<D extends NotificationDescriptor<unknown>>(d: D, params: ParamsOf<D>): void {
    if (this.client !== undefined && this.running) {
      this.client.sendNotification(d.method, params).catch((e: unknown) => this.log.warn(`${d.method}: ${errorText(e)}`));
    }
  }

  /** The URI as the proxy writes it, the same way the language client writes `didOpen`. */
  toProtocolUri(uri: vscode.Uri): string {
    return this.client?.code2ProtocolConverter.asUri(uri) ?? uri.toString();
  }

  /** A URI from the proxy as a VS Code URI. */
  fromProtocolUri(uri: string): vscode.Uri {
    return this.client?.protocol2CodeConverter.asUri(uri) ?? vscode.Uri.parse(uri);
  }

  /** Starts `mesh-proxy lsp` unless it runs; concurrent callers share one start. */
  ensureClient(): Promise<LanguageClient> {
    if (this.client !== undefined && this.running) {
      return Promise.resolve(this.client);
    }
    this.starting ??= this.startClient().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async startClient(): Promise<LanguageClient> {
    await this.stopClient();
    this.setState({ kind: 'starting' });
    const config = vscode.workspace.getConfiguration('mesh');
    const location = resolveProxy(config.get<string>('proxyPath', ''), this.extension.extensionPath);
    try {
      const version = await checkProxy(location);
      this.log.info(`using ${location.command} (${version}, from ${location.source})`);
    } catch (e) {
      this.setState({ kind: 'failed', message: errorText(e) });
      throw e;
    }
    const env = proxyEnvironment({
      serverUrl: config.get<string>('serverUrl', 'http://127.0.0.1:7420'),
      displayName: config.get<string>('displayName', ''),
    });
    const serverOptions: ServerOptions = {
      command: location.command,
      // The client appends `--stdio`; the proxy accepts it.
      args: ['lsp'],
      transport: TransportKind.stdio,
      options: { env: { ...process.env, ...env } },
    };
    const clientOptions: LanguageClientOptions = {
      // Every file the editor opens is shared if it is in the room; the proxy decides.
      documentSelector: [{ scheme: 'file' }],
      outputChannel: this.log,
      // The proxy holds the room; a silent restart would hide that the session ended.
      connectionOptions: { maxRestartCount: 0 },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue, handled: true }),
        closed: () => ({ action: CloseAction.DoNotRestart, handled: true }),
      },
    };
    const client = new LanguageClient('mesh', 'Mesh', serverOptions, clientOptions);
    for (const [method, emitter] of this.emitters) {
      client.onNotification(method, (params: unknown) => emitter.fire(params));
    }
    for (const [method, handler] of this.requestHandlers) {
      client.onRequest(method, (params: unknown) => handler(params));
    }
    client.onDidChangeState((e) => {
      if (e.newState === State.Stopped && client === this.client) {
        this.client = undefined;
        if (this.stopping) {
          this.setState({ kind: 'stopped' });
        } else {
          this.log.error('mesh-proxy stopped unexpectedly');
          this.setState({ kind: 'failed', message: 'mesh-proxy stopped unexpectedly; see Mesh: Show Log.' });
        }
      }
    });
    this.client = client;
    try {
      await client.start();
    } catch (e) {
      this.client = undefined;
      const message = `mesh-proxy did not start: ${errorText(e)}`;
      this.setState({ kind: 'failed', message });
      throw new Error(message);
    }
    // Replaces the client's own handler (registered by start): see applyEdit.ts for why.
    client.onRequest(ApplyWorkspaceEditRequest.type, (params) => applyWorkspaceEdit(client, params));
    const experimental = client.initializeResult?.capabilities.experimental as { mesh?: { version?: number } } | undefined;
    this.log.info(`mesh-proxy started (mesh protocol version ${experimental?.mesh?.version ?? 'unknown'})`);
    // A status notification may have raced ahead; ask anyway so the state is never stale.
    try {
      const status = await client.sendRequest<Status>('mesh/status', {});
      this.setStatus(status);
    } catch (e) {
      this.log.warn(`mesh/status: ${errorText(e)}`);
      if (this.currentState.kind === 'starting') {
        this.setStatus({ state: 'idle', participants: [] });
      }
    }
    return client;
  }

  /** Stops the proxy if it runs. */
  async stopClient(): Promise<void> {
    const client = this.client;
    if (client === undefined) {
      return;
    }
    this.stopping = true;
    try {
      if (client.needsStop()) {
        await client.stop(2000);
      }
    } catch (e) {
      this.log.warn(`stopping mesh-proxy: ${errorText(e)}`);
    } finally {
      this.stopping = false;
      if (this.client === client) {
        this.client = undefined;
        this.setState({ kind: 'stopped' });
      }
    }
  }

  dispose(): void {
    for (const d of this.disposables.splice(0).reverse()) {
      try {
        d.dispose();
      } catch (e) {
        this.log.warn(`dispose: ${errorText(e)}`);
      }
    }
  }
}
