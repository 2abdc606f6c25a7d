/**
 * The dock under the editors: one panel at a time (Run, Debug), chosen by its tab. A panel
 * asks to be shown when something happens in it that the user should see (a run starts, the
 * debugger stops), unless the user picked another panel within the last few seconds.
 */
import { h, fill } from './dom.js'

/** How long after the user picked a panel by hand another panel may not take the dock. */
const USER_CHOICE_MS = 4000

interface DockPanel { id: string; label: string; el: HTMLElement; tab: HTMLButtonElement }

export class Dock {
  readonly el: HTMLElement
  private readonly tabs: HTMLElement
  private readonly body: HTMLElement
  private readonly panels: DockPanel[] = []
  private current: string | null = null
  private pickedAt = 0

  constructor () {
    this.tabs = h('div', { class: 'dock-tabs', role: 'tablist' })
    this.body = h('div', { class: 'dock-body' })
    this.el = h('section', { class: 'dock', 'data-testid': 'dock' }, this.tabs, this.body)
  }

  /** Adds a panel with the tab `label`; the first one added is shown. */
  add (id: string, label: string, el: HTMLElement): void {
    const tab = h('button', { type: 'button', role: 'tab', class: 'dock-tab', 'data-testid': `dock-tab-${id}` }, label)
    tab.addEventListener('click', () => { this.pickedAt = Date.now(); this.show(id) })
    this.panels.push({ id, label, el, tab })
    fill(this.tabs, ...this.panels.map(p => p.tab))
    this.body.append(el)
    if (this.current === null) this.show(id)
    else el.hidden = true
  }

  /** Shows the panel `id`. */
  show (id: string): void {
    this.current = id
    for (const p of this.panels) {
      p.el.hidden = p.id !== id
      p.tab.setAttribute('aria-selected', String(p.id === id))
      p.tab.classList.toggle('active', p.id === id)
    }
  }

  /** Shows the panel `id` because something happened in it, unless the user just chose
   * another one. */
  reveal (id: string): void {
    if (this.current !== id && Date.now() - this.pickedAt > USER_CHOICE_MS) this.show(id)
  }

  /** Marks a tab as having news the user has not looked at. */
  mark (id: string, on: boolean): void {
    this.panels.find(p => p.id === id)?.tab.classList.toggle('news', on && this.current !== id)
  }
}
