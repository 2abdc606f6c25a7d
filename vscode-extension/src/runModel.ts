/**
 * The pure part of shared runs: what a run's terminal shows (header, output, exit line)
 * and how keys typed into it become stdin. No `vscode` import, so unit tests load it in
 * plain Node.js; `run.ts` wires it to terminals and the proxy.
 */
import type { RunExitedParams, RunStartedParams, RunStream } from './protocol';

/** SGR codes: the terminal keeps the program's own escapes and adds only these. */
const DIM = '\x1b[2m';
const BOLD = '\x1b[1m';
const RED = '\x1b[31m';
const GREEN = '\x1b[32m';
const YELLOW = '\x1b[33m';
const RESET = '\x1b[0m';
const ESC = '\x1b';

/** Colour per stream; stdout keeps the terminal's own. */
const STREAM_COLOUR: Record<RunStream, string | undefined> = { compile: YELLOW, stdout: undefined, stderr: RED };

/** A terminal moves down on `\n` without returning to the left: every line end becomes `\r\n`. */
export function toTerminalLines(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

/** A piece of output as the terminal shows it: compiler output and stderr coloured. */
export function outputText(stream: RunStream, data: string): string {
  const colour = STREAM_COLOUR[stream];
  const text = toTerminalLines(data);
  return colour === undefined || text === '' ? text : `${colour}${text}${RESET}`;
}

/** The name of a run's terminal. */
export function terminalName(run: RunStartedParams): string {
  const what = run.debug === true ? 'Mesh debug input' : 'Mesh';
  return `${what}: ${baseName(run.path)}${run.you ? '' : ` (${run.byName})`}`;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The first line of a run's terminal: who runs what, and how to work it. */
export function headerText(run: RunStartedParams): string {
  if (run.debug === true) {
    const who = run.you ? 'You debug' : `${run.byName} debugs`;
    return `${DIM}▶ ${who} ${run.path} (${run.language}) · its output is in the Debug Console too · type its input here, Ctrl+D ends it${RESET}\r\n`;
  }
  const who = run.you ? 'You run' : `${run.byName} runs`;
  return `${DIM}▶ ${who} ${run.path} (${run.language}) · run ${run.runId} · Ctrl+D ends input, Ctrl+C stops${RESET}\r\n`;
}

/** A duration for people: "420 ms", "1.5 s". */
export function durationText(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** How a run ended, in words: "exit 0 · 420 ms", "time limit hit · exit 137 · 10.0 s", "stopped". */
export function exitSummary(exited: RunExitedParams): { text: string; ok: boolean } {
  if (exited.error !== null) {
    return { text: exited.error, ok: false };
  }
  const parts: string[] = [];
  if (exited.limit !== null) {
    parts.push(`${exited.limit} limit hit`);
  } else if (exited.stage === 'compile') {
    parts.push('compile error');
  }
  parts.push(exited.code === null ? 'no exit code' : `exit ${exited.code}`, durationText(exited.durationMs));
  return { text: parts.join(' · '), ok: exited.code === 0 && exited.limit === null };
}

/** The last line of a run's terminal, on a line of its own. */
export function exitText(exited: RunExitedParams, midLine: boolean): string {
  const { text, ok } = exitSummary(exited);
  return `${midLine ? '\r\n' : ''}${BOLD}${ok ? GREEN : RED}■ ${text}${RESET}\r\n`;
}

/** What a keystroke (or a paste) typed into a run's terminal does. */
export interface TypedAction {
  /** To draw in the terminal: the program does not echo, so the terminal does. */
  echo: string;
  /** Text for the program's stdin, in order; `eof` closes stdin after the last piece. */
  send: string[];
  eof: boolean;
  /** Ctrl+C: stop the run. */
  stop: boolean;
}

/**
 * A line discipline, as a terminal in cooked mode has: typed text is echoed and kept until
 * Enter sends the line; Backspace edits it; Ctrl+D sends what is typed, or closes stdin on
 * an empty line; Ctrl+C stops the run. Escape sequences (arrow keys) are ignored.
 */
export class LineDiscipline {
  private line = '';
  /** Where we are in an escape sequence being skipped. */
  private escape: 'none' | 'start' | 'csi' | 'ss3' = 'none';

  /** Handles what the terminal reports typed (a key, or a whole paste). */
  type(data: string): TypedAction {
    const action: TypedAction = { echo: '', send: [], eof: false, stop: false };
    for (const ch of data.replace(/\r\n/g, '\r')) {
      if (action.eof || action.stop) {
        break;
      }
      if (!this.skipEscape(ch)) {
        this.key(ch, action);
      }
    }
    return action;
  }

  /** True when `ch` belongs to an escape sequence (ESC [ ... final, ESC O x, ESC x). */
  private skipEscape(ch: string): boolean {
    switch (this.escape) {
      case 'none':
        if (ch === ESC) {
          this.escape = 'start';
          return true;
        }
        return false;
      case 'start':
        this.escape = ch === '[' ? 'csi' : ch === 'O' ? 'ss3' : 'none';
        return true;
      case 'csi':
        if (ch >= '@' && ch <= '~') {
          this.escape = 'none';
        }
        return true;
      case 'ss3':
        this.escape = 'none';
        return true;
    }
  }

  private key(ch: string, action: TypedAction): void {
    switch (ch) {
      case '\r':
      case '\n':
        action.send.push(`${this.line}\n`);
        action.echo += '\r\n';
        this.line = '';
        return;
      case '\x7f':
      case '\b': {
        const chars = [...this.line];
        if (chars.length > 0) {
          chars.pop();
          this.line = chars.join('');
          action.echo += '\b \b';
        }
        return;
      }
      case '\x04':
        if (this.line === '') {
          action.eof = true;
        } else {
          action.send.push(this.line);
          this.line = '';
        }
        return;
      case '\x03':
        action.stop = true;
        action.echo += '^C\r\n';
        this.line = '';
        return;
      default:
        if (ch >= ' ') {
          this.line += ch;
          action.echo += ch;
        }
    }
  }
}

/** A run as the picker of "the current run" sees it. */
export interface RunRef {
  runId: string;
  you: boolean;
  going: boolean;
  /** Order of arrival: higher is newer. */
  seq: number;
}

/**
 * The run "Stop Run" acts on: the one whose terminal is active while it is going, else your
 * newest run still going, else anyone's newest run still going.
 */
export function currentRun(runs: readonly RunRef[], activeRunId: string | undefined): string | undefined {
  const going = runs.filter((r) => r.going);
  if (activeRunId !== undefined && going.some((r) => r.runId === activeRunId)) {
    return activeRunId;
  }
  const newest = (list: RunRef[]): RunRef | undefined => list.reduce<RunRef | undefined>((a, r) => (a === undefined || r.seq > a.seq ? r : a), undefined);
  return (newest(going.filter((r) => r.you)) ?? newest(going))?.runId;
}
