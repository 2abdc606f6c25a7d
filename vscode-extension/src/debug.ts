/**
 * Shared debugging: the `mesh` debug type. VS Code starts `mesh-proxy dap --folder DIR` as
 * the debug adapter (an executable speaking DAP on stdio); the proxy answers `initialize`,
 * turns `launch` into starting or joining the room's debug session on the server, and
 * forwards the rest, so VS Code's own debugger UI (breakpoints, call stack, variables,
 * stepping) drives the one session every participant shares. "Mesh: Debug" debugs the
 * active file; F5 in a folder without a launch.json does the same. The logic lives in
 * `debugConfig.ts`; this file only wires it to VS Code.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';

import type { Ctx } from './context';
import {
  type ActiveFile,
  DEBUG_TYPE,
  adapterArgs,
  adapterFolder,
  checkConfiguration,
  configurationFor,
  joinConfiguration,
  joinOffer,
  resolveConfiguration,
} from './debugConfig';
import { ProxyNotifications } from './protocol';
import type { DebugStartedParams } from './protocol';
import { checkProxy, proxyEnvironment, resolveProxy } from './proxyBinary';
import { inSession } from './status';

/** How much of one DAP message the Mesh log shows (variables can be large). */
const LOGGED_MESSAGE_CHARS = 2000;

export class Debugging {
  /** The ids of the mesh debug sessions going in this window. */
  private readonly sessions = new Set<string>();

  constructor(private readonly ctx: Ctx) {
    ctx.own(vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, this.provider()));
    ctx.own(vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, { createDebugAdapterDescriptor: (s) => this.adapter(s) }));
    ctx.own(vscode.debug.registerDebugAdapterTrackerFactory(DEBUG_TYPE, { createDebugAdapterTracker: (s) => this.tracker(s) }));
    // The session is created before its adapter starts the room's session, so the starter's
    // own window knows of it by the time `mesh/debugStarted` arrives.
    ctx.own(
      vscode.debug.onDidStartDebugSession((s) => {
        if (s.type === DEBUG_TYPE) {
          this.sessions.add(s.id);
        }
      }),
    );
    ctx.own(vscode.debug.onDidTerminateDebugSession((s) => this.sessions.delete(s.id)));
    ctx.on(ProxyNotifications.debugStarted, (p) => void this.offerToJoin(p));
  }

  /** Someone started debugging in the room: offers to join, unless this window is in it already. */
  private async offerToJoin(started: DebugStartedParams): Promise<void> {
    const text = joinOffer(started, this.sessions.size > 0 || vscode.debug.activeDebugSession?.type === DEBUG_TYPE);
    if (text === undefined) {
      return;
    }
    const choice = await vscode.window.showInformationMessage(text, 'Join');
    if (choice !== 'Join') {
      return;
    }
    const program = started.uri === undefined ? undefined : vscode.Uri.parse(started.uri);
    const folder = program === undefined ? vscode.workspace.workspaceFolders?.[0] : vscode.workspace.getWorkspaceFolder(program);
    await vscode.debug.startDebugging(folder, joinConfiguration(program?.fsPath) as vscode.DebugConfiguration);
  }

  /** "Mesh: Debug": debugs a file (default: the active editor's) in the room's shared session. */
  async debug(target?: vscode.Uri): Promise<void> {
    if (!inSession(this.ctx.state)) {
      void vscode.window.showErrorMessage('Mesh: share this folder or join a session first; debugging takes files of the room.');
      return;
    }
    const resolved = configurationFor(activeFile(target));
    if (!resolved.ok) {
      void vscode.window.showErrorMessage(resolved.message);
      return;
    }
    const program = resolved.config.program as string;
    const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(program));
    // VS Code reports a failure to start in its own words; nothing more to say here.
    await vscode.debug.startDebugging(folder, resolved.config as vscode.DebugConfiguration);
  }

  private provider(): vscode.DebugConfigurationProvider {
    return {
      resolveDebugConfiguration: (_folder, config) => {
        const resolved = resolveConfiguration(config, activeFile());
        if (!resolved.ok) {
          void vscode.window.showErrorMessage(resolved.message);
          return undefined;
        }
        return resolved.config as vscode.DebugConfiguration;
      },
      resolveDebugConfigurationWithSubstitutedVariables: (folder, config) => {
        const checked = checkConfiguration(config, folder?.uri.fsPath);
        if (!checked.ok) {
          void vscode.window.showErrorMessage(checked.message);
          return undefined;
        }
        return checked.config as vscode.DebugConfiguration;
      },
    };
  }

  /** `mesh-proxy dap` for the session's folder, with the same proxy and settings as `mesh-proxy lsp`. */
  private async adapter(session: vscode.DebugSession): Promise<vscode.DebugAdapterDescriptor> {
    const config = vscode.workspace.getConfiguration('mesh');
    const location = resolveProxy(config.get<string>('proxyPath', ''), this.ctx.extension.extensionPath);
    this.ctx.log.info(`debug: mesh-proxy is ${location.command} (from ${location.source})`);
    // A missing or broken proxy is reported with what to do, as for the language server.
    await checkProxy(location);
    const program = typeof session.configuration.program === 'string' ? session.configuration.program : undefined;
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
    const folder = adapterFolder(program, session.workspaceFolder?.uri.fsPath, folders);
    const env = proxyEnvironment({
      serverUrl: config.get<string>('serverUrl', 'http://127.0.0.1:7420'),
      displayName: config.get<string>('displayName', ''),
    });
    // The end-to-end test reads the adapter's own log; VS Code drops an adapter's stderr.
    const testOut = process.env.MESH_TEST_OUT;
    if (testOut !== undefined && testOut !== '') {
      env.MESH_PROXY_LOG = path.join(testOut, 'mesh-proxy-dap.log');
    }
    const args = adapterArgs(folder);
    this.ctx.log.info(`debug: starting ${location.command} ${args.join(' ')}`);
    return new vscode.DebugAdapterExecutable(location.command, args, folder === undefined ? { env } : { env, cwd: folder });
  }

  /** Logs the session's life, and every DAP message while `mesh.trace.server` is "verbose". */
  private tracker(session: vscode.DebugSession): vscode.DebugAdapterTracker {
    const log = this.ctx.log;
    const verbose = (): boolean => vscode.workspace.getConfiguration('mesh').get<string>('trace.server') === 'verbose';
    const show = (m: unknown): string => {
      const text = JSON.stringify(m);
      return text.length > LOGGED_MESSAGE_CHARS ? `${text.slice(0, LOGGED_MESSAGE_CHARS)}…` : text;
    };
    return {
      onWillStartSession: () => log.info(`debug: session "${session.name}" starts`),
      onWillReceiveMessage: (m: unknown) => {
        if (verbose()) {
          log.info(`debug -> ${show(m)}`);
        }
      },
      onDidSendMessage: (m: unknown) => {
        if (verbose()) {
          log.info(`debug <- ${show(m)}`);
        }
      },
      // VS Code reports the pipe closing after a disconnect as an error too: worth a note only.
      onError: (e: Error) => log.info(`debug: adapter stream: ${e.message}`),
      onExit: (code: number | undefined, signal: string | undefined) =>
        log.info(`debug: mesh-proxy dap ended (${signal ?? `exit ${code ?? 'unknown'}`})`),
    };
  }
}

/** The file to debug: `target` when given, else the active editor's document. */
function activeFile(target?: vscode.Uri): ActiveFile | undefined {
  const document =
    target === undefined
      ? vscode.window.activeTextEditor?.document
      : vscode.workspace.textDocuments.find((d) => d.uri.toString() === target.toString());
  if (document !== undefined) {
    return { scheme: document.uri.scheme, fsPath: document.uri.fsPath, languageId: document.languageId };
  }
  return target === undefined ? undefined : { scheme: target.scheme, fsPath: target.fsPath, languageId: '' };
}
