/**
 * The debug panel (a later slice fills it in): the room's shared debug session.
 */
import type { MeshProvider } from '../net/provider.js'
import type { Workspace } from '../ui/workspace.js'
import type { Dock } from '../ui/dock.js'
import type { Shortcuts } from '../ui/shortcuts.js'
import { h } from '../ui/dom.js'

export class DebugPanel {
  readonly el: HTMLElement

  constructor (
    readonly provider: MeshProvider,
    readonly workspace: Workspace,
    readonly dock: Dock,
    readonly shortcuts: Shortcuts,
    readonly notify: (text: string) => void,
  ) {
    this.el = h('section', { class: 'dock-panel debug', 'data-testid': 'debug-panel' }, h('p', { class: 'empty' }, 'The debugger will show here.'))
  }
}
