/**
 * The run panel (a later slice fills it in): the room's runs, live, with their output.
 */
import type { MeshProvider } from '../net/provider.js'
import type { Workspace } from '../ui/workspace.js'
import type { Dock } from '../ui/dock.js'
import type { Shortcuts } from '../ui/shortcuts.js'
import { h } from '../ui/dom.js'

export class RunPanel {
  readonly el: HTMLElement

  constructor (
    readonly provider: MeshProvider,
    readonly workspace: Workspace,
    readonly dock: Dock,
    readonly shortcuts: Shortcuts,
    readonly notify: (text: string) => void,
  ) {
    this.el = h('section', { class: 'dock-panel run', 'data-testid': 'run-panel' }, h('p', { class: 'empty' }, 'Runs will show here.'))
  }
}
