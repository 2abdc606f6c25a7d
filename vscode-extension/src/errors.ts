/**
 * Turns what went wrong into a message with buttons that fix it. The proxy's errors are
 * written for humans already ("cannot reach the server at ...", "not a mesh link: ...");
 * this module only picks the buttons.
 */

/** A button under an error message. */
export type Fix = 'Retry' | 'Open Settings' | 'Show Log' | 'Enter Another Link';

/** What went wrong, for picking buttons. */
export type Problem = 'proxy' | 'unreachable' | 'badLink' | 'other';

/** Classifies an error message. */
export function classify(message: string): Problem {
  const m = message.toLowerCase();
  if (m.includes('mesh-proxy')) {
    return 'proxy';
  }
  if (m.includes('not a mesh link') || m.includes('invalid link') || m.includes('token')) {
    return 'badLink';
  }
  if (m.includes('cannot reach') || m.includes('connection refused') || m.includes('unreachable') || m.includes('timed out')) {
    return 'unreachable';
  }
  return 'other';
}

/** The buttons for a problem. */
export function fixesFor(problem: Problem): Fix[] {
  switch (problem) {
    case 'proxy':
      return ['Open Settings', 'Retry', 'Show Log'];
    case 'unreachable':
      return ['Retry', 'Open Settings'];
    case 'badLink':
      return ['Enter Another Link'];
    case 'other':
      return ['Retry', 'Show Log'];
  }
}

/** The text of an error, whatever was thrown. */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    return err.message;
  }
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message;
  }
  return String(err);
}
