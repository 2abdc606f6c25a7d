/**
 * The room's keyboard shortcuts, in one table: panels register theirs (run, stop, debug,
 * step...), one listener dispatches them, and `?` (or F1) shows them all. Keys are written
 * as `Ctrl+Enter`, `Shift+F5`, `F10`; `Mod` is Ctrl, or Cmd on a Mac.
 */
import { h, fill } from './dom.js'

export interface Shortcut {
  /** As shown and matched: `Mod+Enter`, `Shift+F5`, `F10`. */
  keys: string
  /** What it does, for the help. */
  label: string
  /** Does it; returns false when it does not apply now (the key then goes on as usual). */
  run: () => boolean | void
  /** Also while typing in a text field other than the editor (e.g. F-keys). */
  inInputs?: boolean
}

const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform)

/** The `keys` string of a keyboard event, in the same form as {@link Shortcut.keys}. */
export function keysOf (e: KeyboardEvent): string {
  const parts: string[] = []
  if (isMac ? e.metaKey : e.ctrlKey) parts.push('Mod')
  if (isMac && e.ctrlKey) parts.push('Ctrl')
  if (e.altKey) parts.push('Alt')
  if (e.shiftKey) parts.push('Shift')
  const key = e.key.length === 1 ? e.key.toUpperCase() : e.key
  parts.push(key)
  return parts.join('+')
}

/** How a shortcut reads on this platform. */
export function showKeys (keys: string): string {
  return keys.replace(/Mod/g, isMac ? '⌘' : 'Ctrl')
}

export class Shortcuts {
  private readonly table: Shortcut[] = []
  private readonly help: HTMLDialogElement

  constructor () {
    this.help = h('dialog', { class: 'shortcuts-help', 'data-testid': 'shortcuts-help' })
    document.body.append(this.help)
    this.add({ keys: 'F1', label: 'Show these shortcuts', run: () => this.toggleHelp(), inInputs: true })
    window.addEventListener('keydown', (e) => this.onKey(e), { capture: true })
  }

  add (s: Shortcut): void {
    this.table.push(s)
  }

  list (): readonly Shortcut[] {
    return this.table
  }

  toggleHelp (): void {
    if (this.help.open) { this.help.close(); return }
    const close = h('button', { type: 'button', class: 'small' }, 'Close')
    close.addEventListener('click', () => this.help.close())
    fill(this.help,
      h('h2', {}, 'Keyboard shortcuts'),
      h('table', {}, ...this.table.map(s => h('tr', {}, h('td', {}, h('kbd', {}, showKeys(s.keys))), h('td', {}, s.label)))),
      h('p', { class: 'muted' }, 'Press ? outside the editor, or F1 anywhere, to show this again.'),
      close)
    this.help.showModal()
  }

  private onKey (e: KeyboardEvent): void {
    const target = e.target as HTMLElement | null
    const inEditor = !!target?.closest('.cm-editor')
    const inField = !inEditor && !!target?.closest('input, textarea, select, [contenteditable], .xterm')
    if (e.key === '?' && !inEditor && !inField && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault()
      this.toggleHelp()
      return
    }
    const keys = keysOf(e)
    for (const s of this.table) {
      if (s.keys !== keys) continue
      if (inField && !s.inInputs) continue
      if (s.run() === false) continue
      e.preventDefault()
      e.stopPropagation()
      return
    }
  }
}
