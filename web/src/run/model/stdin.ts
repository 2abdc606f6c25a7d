/**
 * Typing into a run from the terminal, without DOM. A program in the sandbox has pipes, not
 * a terminal: nothing echoes what is typed and nothing edits the line. So the page does what
 * a terminal's line discipline would: it shows the keys as they are typed, lets Backspace
 * take back a character, and sends the line when Enter is pressed; Ctrl+D sends what is
 * typed and closes stdin, Ctrl+C asks to stop the run.
 */

/** The longest text sent in one `input` message, in UTF-16 units: the server takes mesh
 * messages up to 64 KiB of JSON, and a character may take 6 bytes escaped. */
export const MAX_INPUT_CHARS = 8 * 1024

/** The longest line kept while typing: a paste beyond it is sent in pieces. */
export const MAX_LINE_CHARS = MAX_INPUT_CHARS

/** What one key (or paste) asks for. */
export interface LineAction {
  /** What to show in the terminal now (the echo). */
  echo: string
  /** Text to send to the program, in order (each at most {@link MAX_INPUT_CHARS}). */
  send: string[]
  /** Close stdin after sending. */
  eof: boolean
  /** Ctrl+C: stop the run. */
  interrupt: boolean
}

/** A key's escape sequence: CSI (`ESC [ A`), SS3 (`ESC O P`), or ESC and one character. */
const KEY_SEQUENCE = /\x1b(?:\[[0-?]*[ -/]*[@-~]|O.|.)?/gs

/** The line being typed into a run from the terminal. */
export class LineEditor {
  private line = ''

  /** What is typed and not sent yet. */
  unsent (): string {
    return this.line
  }

  /** Takes what the terminal reports as typed (keys, or a whole paste). */
  feed (data: string): LineAction {
    const act: LineAction = { echo: '', send: [], eof: false, interrupt: false }
    // Arrow and function keys arrive as escape sequences: they edit nothing here.
    for (const ch of data.replace(KEY_SEQUENCE, '')) {
      if (act.eof || act.interrupt) break
      switch (ch) {
        case '\r':
        case '\n':
          act.echo += '\r\n'
          act.send.push(...pieces(this.line + '\n'))
          this.line = ''
          break
        case '\x7f':
        case '\b': {
          if (this.line === '') break
          const chars = [...this.line]
          chars.pop()
          this.line = chars.join('')
          act.echo += '\b \b'
          break
        }
        case '\x04':
          if (this.line) act.send.push(...pieces(this.line))
          this.line = ''
          act.eof = true
          break
        case '\x03':
          act.echo += '^C\r\n'
          this.line = ''
          act.interrupt = true
          break
        default:
          // Other control keys edit nothing.
          if (ch < ' ' || ch === '\x7f') break
          if (this.line.length >= MAX_LINE_CHARS) {
            act.send.push(this.line)
            this.line = ''
          }
          this.line += ch
          act.echo += ch
      }
    }
    return act
  }

  /** Forgets what was typed (the run ended). */
  clear (): void {
    this.line = ''
  }
}

/** `text` in pieces of at most {@link MAX_INPUT_CHARS}, never splitting a surrogate pair. */
export function pieces (text: string): string[] {
  const out: string[] = []
  let rest = text
  while (rest.length > MAX_INPUT_CHARS) {
    let cut = MAX_INPUT_CHARS
    const code = rest.charCodeAt(cut - 1)
    if (code >= 0xd800 && code <= 0xdbff) cut--
    out.push(rest.slice(0, cut))
    rest = rest.slice(cut)
  }
  if (rest) out.push(rest)
  return out
}
