/**
 * The run panel's terminal: xterm.js (DOM renderer) with its fit addon, loaded as its own
 * chunk the first time the panel needs it, so the editor's first load does not carry it.
 *
 * The page's Content-Security-Policy allows `<style>` elements only with the page's nonce
 * and no `style` attributes. xterm.js keeps within that as used here:
 * - its stylesheet (`xterm.css`) is bundled into the page's CSS file ('self');
 * - the `<style>` elements it makes itself (its theme, cell size and scroll bar) get the
 *   nonce before they are inserted. The renderer makes its elements through the
 *   `documentOverride` option, here a view of `document` whose `createElement` adds the
 *   nonce to a `<style>` (and changes nothing else); the scroll bar's element comes from
 *   the global `document` whatever the option says (in xterm 6.0 `mainDocument` is always
 *   `window.document`: `a ?? b ? c : d` parses as `(a ?? b) ? c : d`), and is made inside
 *   `open()`, so `createElement` is given the same addition for the length of that call only;
 * - it sets sizes and colours through the CSSOM (`el.style.x = ...`), which the policy
 *   allows; the one place it writes a `style` attribute, 24-bit colours, never runs because
 *   the output passes through `TrueColorFilter` first, and the minimum contrast option
 *   (which would too) stays off.
 * The end-to-end suite fails on any CSP violation, so a newer xterm that does more shows up.
 */
import '@xterm/xterm/css/xterm.css'
import type { Terminal } from '@xterm/xterm'
import type { FitAddon } from '@xterm/addon-fit'

/** Lines the terminal keeps above the screen; the page's own copy of a run's output is
 * bounded separately (`MAX_OUTPUT_CHARS`), and a switch of run redraws from it. */
export const SCROLLBACK_LINES = 5000

/** The page's style nonce, from the `<meta>` the server fills in per response. */
export function styleNonce (): string {
  const v = document.querySelector<HTMLMetaElement>('meta[name="mesh-style-nonce"]')?.content ?? ''
  return /^[0-9a-f]+$/.test(v) ? v : ''
}

/** `document`, except that `createElement('style')` comes with the nonce. */
function nonceDocument (nonce: string): Document {
  return new Proxy(document, {
    get (target, prop) {
      if (prop === 'createElement') {
        return (tag: string, options?: ElementCreationOptions) => {
          const el = target.createElement(tag, options)
          if (tag.toLowerCase() === 'style' && nonce) el.setAttribute('nonce', nonce)
          return el
        }
      }
      const v: unknown = Reflect.get(target, prop, target)
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

/** Runs `fn` with `document.createElement` adding the nonce to `<style>` elements, and puts
 * the document's own method back afterwards, whatever happens. */
function withNoncedStyles<T> (nonce: string, fn: () => T): T {
  const create = Document.prototype.createElement
  const stamped = (tag: string, options?: ElementCreationOptions): HTMLElement => {
    const el = create.call(document, tag, options)
    if (tag.toLowerCase() === 'style' && nonce) el.setAttribute('nonce', nonce)
    return el
  }
  Object.defineProperty(document, 'createElement', { value: stamped, configurable: true, writable: true })
  try {
    return fn()
  } finally {
    Reflect.deleteProperty(document, 'createElement')
  }
}

/** The terminal of the run panel. */
export class TerminalView {
  private constructor (
    readonly term: Terminal,
    private readonly fitAddon: FitAddon,
    private readonly host: HTMLElement,
  ) {}

  /** Loads xterm.js and opens a terminal in `host`; `onData` gets what the user types. */
  static async open (host: HTMLElement, onData: (data: string) => void): Promise<TerminalView> {
    const [{ Terminal }, { FitAddon }] = await Promise.all([import('@xterm/xterm'), import('@xterm/addon-fit')])
    const nonce = styleNonce()
    const term = new Terminal({
      // Programs write `\n`; without a TTY nothing turns it into CR LF.
      convertEol: true,
      scrollback: SCROLLBACK_LINES,
      cursorBlink: false,
      cursorInactiveStyle: 'none',
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace',
      fontSize: 13,
      minimumContrastRatio: 1,
      documentOverride: nonceDocument(nonce),
      theme: { background: '#1e1e24', foreground: '#e6e6ea', cursor: '#e6e6ea' },
    })
    const fitAddon = new FitAddon()
    term.loadAddon(fitAddon)
    withNoncedStyles(nonce, () => term.open(host))
    term.onData(onData)
    const view = new TerminalView(term, fitAddon, host)
    // The dock may be hidden or resized: fit whenever the host's size changes.
    new ResizeObserver(() => view.fit()).observe(host)
    view.fit()
    return view
  }

  fit (): void {
    if (this.host.offsetWidth > 0 && this.host.offsetHeight > 0) this.fitAddon.fit()
  }

  write (text: string): void {
    this.term.write(text)
  }

  /** Clears everything, scrollback included. */
  reset (): void {
    this.term.reset()
  }

  focus (): void {
    this.term.focus()
  }
}
