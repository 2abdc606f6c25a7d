/**
 * 24-bit colours in program output, turned into the nearest of the 256 terminal colours
 * before the terminal draws them.
 *
 * Why: xterm.js's DOM renderer draws the 16 and 256 palette colours with classes from its
 * stylesheet, but a 24-bit colour (`ESC[38;2;R;G;Bm`) as a `style` attribute, which the
 * page's Content-Security-Policy forbids (no `'unsafe-inline'`): the text would lose its
 * colour and the browser would report a violation for every cell. Mapping to the 256-colour
 * cube keeps the policy strict and the colour close (Python's `rich`, `cargo`, and test
 * runners print 24-bit colours).
 *
 * A stream filter: an escape sequence split across two chunks is held back until its end
 * arrives (at most {@link MAX_HELD_CHARS}; a longer one is not a colour and passes as is).
 */

/** The longest unfinished control sequence held back between chunks: an SGR with several
 * 24-bit colours is under 64 characters. */
export const MAX_HELD_CHARS = 64

const ESC = '\x1b'

/** The six levels of each channel in xterm's 6x6x6 colour cube (colours 16-231). */
const CUBE = [0, 95, 135, 175, 215, 255]

/** The nearest of the 256 colours (in the cube or the grey ramp 232-255) to an RGB colour. */
export function nearest256 (r: number, g: number, b: number): number {
  const level = (v: number) => {
    let best = 0
    for (let i = 1; i < CUBE.length; i++) if (Math.abs(CUBE[i] - v) < Math.abs(CUBE[best] - v)) best = i
    return best
  }
  const [ri, gi, bi] = [level(r), level(g), level(b)]
  const cube = 16 + 36 * ri + 6 * gi + bi
  const dist = (x: number, y: number, z: number) => (x - r) ** 2 + (y - g) ** 2 + (z - b) ** 2
  const cubeDist = dist(CUBE[ri], CUBE[gi], CUBE[bi])
  // Grey ramp: 8, 18, ..., 238.
  const avg = (r + g + b) / 3
  const step = Math.min(23, Math.max(0, Math.round((avg - 8) / 10)))
  const grey = 8 + 10 * step
  return dist(grey, grey, grey) < cubeDist ? 232 + step : cube
}

/** Rewrites the parameters of one SGR sequence (what is between `ESC[` and `m`). */
export function rewriteSgr (params: string): string {
  // Both forms: `38;2;R;G;B` and the colon form `38:2::R:G:B` / `38:2:R:G:B`.
  const parts = params.split(';')
  const out: string[] = []
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]
    if (p.includes(':')) {
      const sub = p.split(':')
      if ((sub[0] === '38' || sub[0] === '48' || sub[0] === '58') && sub[1] === '2') {
        const rgb = sub.slice(sub.length >= 6 ? 3 : 2, (sub.length >= 6 ? 3 : 2) + 3).map(Number)
        if (rgb.length === 3 && rgb.every(v => Number.isInteger(v) && v >= 0 && v <= 255)) {
          out.push(`${sub[0]}:5:${nearest256(rgb[0], rgb[1], rgb[2])}`)
          continue
        }
      }
      out.push(p)
      continue
    }
    if ((p === '38' || p === '48' || p === '58') && parts[i + 1] === '2' && i + 4 < parts.length) {
      const rgb = parts.slice(i + 2, i + 5).map(Number)
      if (rgb.every(v => Number.isInteger(v) && v >= 0 && v <= 255)) {
        out.push(p, '5', String(nearest256(rgb[0], rgb[1], rgb[2])))
        i += 4
        continue
      }
    }
    out.push(p)
  }
  return out.join(';')
}

/** A CSI sequence: `ESC [`, parameter bytes, intermediate bytes, one final byte. */
const CSI = /\x1b\[([0-?]*)([ -/]*)([@-~])/g

/** The stream filter: feed it each chunk of output in order. */
export class TrueColorFilter {
  private held = ''

  /** The chunk, with 24-bit colours mapped; an unfinished sequence at its end is held. */
  feed (chunk: string): string {
    let text = this.held + chunk
    this.held = ''
    const cut = unfinishedTail(text)
    if (cut >= 0) {
      this.held = text.slice(cut)
      text = text.slice(0, cut)
    }
    return text.replace(CSI, (all, params: string, inter: string, final: string) =>
      final === 'm' && inter === '' && params.includes('2') ? `${ESC}[${rewriteSgr(params)}m` : all)
  }

  /** What is held back, when the stream ends. */
  flush (): string {
    const rest = this.held
    this.held = ''
    return rest
  }
}

/** Where an unfinished CSI sequence begins at the end of `text` (-1: none, or too long). */
function unfinishedTail (text: string): number {
  const esc = text.lastIndexOf(ESC)
  if (esc < 0 || text.length - esc > MAX_HELD_CHARS) return -1
  const rest = text.slice(esc + 1)
  if (rest === '') return esc
  if (rest[0] !== '[') return -1
  // Unfinished while only parameter and intermediate bytes follow `[`.
  return /^\[[0-?]*[ -/]*$/.test(rest) ? esc : -1
}
