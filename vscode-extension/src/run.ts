/**
 * Shared runs: "Mesh: Run" asks the proxy to run the current file in the room
 * (`mesh/run`); every run in the room, yours or anyone's, gets a terminal of its own backed
 * by a `Pseudoterminal` that shows its output live (ANSI kept) and its exit line. Typing in
 * it goes to the program's stdin (`mesh/runInput`); Ctrl+D ends the input, Ctrl+C stops
 * the run (`mesh/runStop`). A run that waits for a free sandbox (`mesh/runQueued`) gets its
 * terminal at once, with its place in the server's queue written as it moves; Ctrl+C there
 * takes it out of the queue.
 */
import * as vscode from 'vscode';

import type { Ctx } from './context';
import { errorText } from './errors';
import { EditorRequests, ProxyNotifications } from './protocol';
import type { RunExitedParams, RunOutputParams, RunQueuedParams, RunStartedParams } from './protocol';
import { LineDiscipline, currentRun, exitSummary, exitText, headerText, outputText, terminalName } from './runModel';
import { inSession } from './status';

/** Terminals of finished runs kept open for reading, newest first; older ones are closed. */
const FINISHED_TERMINALS_KEPT = 3;

/** The end of the runs going when the proxy that reported them stops. */
const PROXY_STOPPED = 'mesh-proxy stopped; the rest of this run is not shown here';

/** One run and its terminal. */
class RunTerminal implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  readonly onDidWrite = this.writeEmitter.event;
  /** What was written before VS Code opened the terminal (it drops earlier writes). */
  private backlog: string[] | undefined = [];
  private readonly discipline = new LineDiscipline();
  /** Whether the last output left the cursor mid-line (the exit line then starts a new one). */
  private midLine = false;
  readonly terminal: vscode.Terminal;
  exited = false;

  constructor(
    readonly run: RunStartedParams,
    readonly seq: number,
    private readonly ctx: Ctx,
  ) {
    this.terminal = vscode.window.createTerminal({
      name: terminalName(run),
      pty: this,
      iconPath: new vscode.ThemeIcon('play'),
      isTransient: true,
    });
    this.write(headerText(run));
  }

  open(): void {
    for (const text of this.backlog ?? []) {
      this.writeEmitter.fire(text);
    }
    this.backlog = undefined;
  }

  close(): void {
    // Closing the terminal only stops showing the run; it goes on in the room.
    this.writeEmitter.dispose();
  }

  handleInput(data: string): void {
    if (this.exited) {
      return;
    }
    const action = this.discipline.type(data);
    if (action.echo !== '') {
      this.write(action.echo);
    }
    const runId = this.run.runId;
    for (const text of action.send) {
      void this.send(() => this.ctx.request(EditorRequests.runInput, { runId, data: text }));
    }
    if (action.eof) {
      void this.send(() => this.ctx.request(EditorRequests.runInput, { runId, data: '', eof: true }));
    }
    if (action.stop) {
      void this.send(() => this.ctx.request(EditorRequests.runStop, { runId }));
    }
  }

  output(params: RunOutputParams): void {
    if (params.data !== '') {
      this.midLine = !params.data.endsWith('\n');
      this.write(outputText(params.stream, params.data));
    }
  }

  /** A line from mesh itself (a queue place, the start after waiting), dimmed. */
  note(text: string): void {
    this.write(`${this.midLine ? '\r\n' : ''}\x1b[2m${text}\x1b[0m\r\n`);
    this.midLine = false;
  }

  exit(params: RunExitedParams): void {
    this.exited = true;
    this.write(exitText(params, this.midLine));
  }

  dispose(): void {
    this.terminal.dispose();
  }

  private write(text: string): void {
    if (this.backlog !== undefined) {
      this.backlog.push(text);
    } else {
      this.writeEmitter.fire(text);
    }
  }

  /** Sends a request; a refusal is shown in the terminal, where the user is looking. */
  private async send(request: () => Promise<unknown>): Promise<void> {
    try {
      await request();
    } catch (e) {
      this.write(`\r\n\x1b[31mmesh: ${errorText(e)}\x1b[0m\r\n`);
    }
  }
}

export class Runs {
  private readonly runs = new Map<string, RunTerminal>();
  private seq = 0;

  constructor(private readonly ctx: Ctx) {
    ctx.on(ProxyNotifications.runStarted, (p) => this.started(p));
    ctx.on(ProxyNotifications.runQueued, (p) => this.queued(p));
    ctx.on(ProxyNotifications.runOutput, (p) => this.runs.get(p.runId)?.output(p));
    ctx.on(ProxyNotifications.runExited, (p) => this.exited(p));
    ctx.own(
      ctx.onDidChangeState((state) => {
        if (state.kind !== 'running') {
          this.abandon(PROXY_STOPPED);
        }
      }),
    );
    ctx.own(vscode.window.onDidCloseTerminal((t) => this.closed(t)));
    ctx.own(vscode.window.onDidChangeActiveTerminal(() => this.updateContext()));
    ctx.own({ dispose: () => this.disposeAll() });
  }

  /** "Mesh: Run": runs a file (default: the active editor's) in the room. */
  async run(target?: vscode.Uri): Promise<void> {
    const uri = target ?? vscode.window.activeTextEditor?.document.uri;
    if (!inSession(this.ctx.state)) {
      void vscode.window.showErrorMessage('Mesh: share this folder or join a session first; runs take files of the room.');
      return;
    }
    if (uri?.scheme !== 'file') {
      void vscode.window.showErrorMessage('Mesh: open a file of the shared folder to run it.');
      return;
    }
    try {
      const { runId } = await this.ctx.request(EditorRequests.run, { uri: this.ctx.toProtocolUri(uri) });
      this.runs.get(runId)?.terminal.show(false);
    } catch (e) {
      void vscode.window.showErrorMessage(`Mesh: ${errorText(e)}`);
    }
  }

  /** "Mesh: Stop Run": stops the run of the active terminal, else your newest run going. */
  async stop(): Promise<void> {
    const runId = currentRun(
      [...this.runs.values()].map((r) => ({ runId: r.run.runId, you: r.run.you, going: !r.exited, seq: r.seq })),
      this.activeRun()?.run.runId,
    );
    if (runId === undefined) {
      void vscode.window.showInformationMessage('Mesh: no run is going.');
      return;
    }
    try {
      await this.ctx.request(EditorRequests.runStop, { runId });
    } catch (e) {
      void vscode.window.showErrorMessage(`Mesh: ${errorText(e)}`);
    }
  }

  private started(params: RunStartedParams): void {
    const waited = this.runs.get(params.runId);
    if (waited !== undefined) {
      waited.note('started');
      return;
    }
    this.seq += 1;
    const run = new RunTerminal(params, this.seq, this.ctx);
    this.runs.set(params.runId, run);
    if (params.debug === true) {
      // A debug session's program shows in the Debug Console; its terminal stays in the
      // list, not in front, for typing its input.
      this.updateContext();
      return;
    }
    // Your own run takes the focus, so you can type its input; others' runs show beside
    // what you are doing.
    run.terminal.show(!params.you);
    if (!params.you) {
      void vscode.window.showInformationMessage(`Mesh: ${params.byName} runs ${params.path}.`);
    }
    this.closeOldTerminals();
    this.updateContext();
  }

  /** A run waits for a free sandbox: its terminal opens now and shows where it is in line. */
  private queued(params: RunQueuedParams): void {
    if (!this.runs.has(params.runId)) {
      this.started(params);
    }
    this.runs.get(params.runId)?.note(params.message);
  }

  private exited(params: RunExitedParams): void {
    const run = this.runs.get(params.runId);
    if (run === undefined) {
      return;
    }
    run.exit(params);
    this.ctx.log.info(`run ${params.runId} (${run.run.path}) ended: ${exitSummary(params).text}`);
    this.updateContext();
  }

  /** Ends every run still going with `why`: nothing will report its exit any more. */
  private abandon(why: string): void {
    for (const run of this.runs.values()) {
      if (!run.exited) {
        run.exit({ runId: run.run.runId, stage: 'run', code: null, durationMs: 0, limit: null, error: why });
      }
    }
    this.updateContext();
  }

  private closed(terminal: vscode.Terminal): void {
    for (const [id, run] of this.runs) {
      if (run.terminal === terminal) {
        this.runs.delete(id);
      }
    }
    this.updateContext();
  }

  private activeRun(): RunTerminal | undefined {
    const active = vscode.window.activeTerminal;
    return [...this.runs.values()].find((r) => r.terminal === active);
  }

  /** Closes the terminals of finished runs beyond the newest few. */
  private closeOldTerminals(): void {
    const finished = [...this.runs.values()].filter((r) => r.exited).sort((a, b) => b.seq - a.seq);
    for (const run of finished.slice(FINISHED_TERMINALS_KEPT)) {
      this.runs.delete(run.run.runId);
      run.dispose();
    }
  }

  /** `mesh.runGoing`: one of your runs is going (the title bar offers Stop instead of Run). */
  private updateContext(): void {
    const going = [...this.runs.values()].some((r) => r.run.you && !r.exited);
    void vscode.commands.executeCommand('setContext', 'mesh.runGoing', going);
  }

  private disposeAll(): void {
    for (const run of this.runs.values()) {
      run.dispose();
    }
    this.runs.clear();
  }
}
