/**
 * Other people's cursors and selections in the editor, drawn from mesh's awareness shape
 * (UTF-16 offsets, see `room/presence.ts`), not from y-codemirror's relative positions: so
 * the browser, VS Code and Neovim see each other.
 *
 * The page hands the editor the current list with {@link setRemoteCursors}; between
 * awareness updates the positions are mapped through local edits, so a cursor stays on its
 * character while someone types before it. Colours are applied through the CSSOM (never a
 * `style` attribute), which the page's Content-Security-Policy allows.
 */
import { EditorSelection, StateEffect, StateField, type Extension } from '@codemirror/state'
import { Decoration, EditorView, RectangleMarker, WidgetType, layer, type DecorationSet, type LayerMarker } from '@codemirror/view'
import { clampCursors, sameCursors, type RemoteCursor } from '../room/presence.js'

/** Replaces the remote cursors shown in this editor. */
export const setRemoteCursors = StateEffect.define<RemoteCursor[]>()

const cursorsField = StateField.define<RemoteCursor[]>({
  create: () => [],
  update (cursors, tr) {
    for (const e of tr.effects) {
      // Offsets are untrusted and may be stale by a few edits: keep them inside the text.
      if (e.is(setRemoteCursors)) return clampCursors(e.value, tr.state.doc.length)
    }
    if (!tr.docChanged) return cursors
    return cursors.map(c => ({
      ...c,
      head: tr.changes.mapPos(c.head, 1),
      ranges: c.ranges.map(([a, h]) => [tr.changes.mapPos(a, 1), tr.changes.mapPos(h, 1)] as [number, number]),
    }))
  },
})

class CaretWidget extends WidgetType {
  constructor (readonly name: string, readonly color: string, readonly clientId: number) {
    super()
  }

  eq (other: CaretWidget): boolean {
    return other.name === this.name && other.color === this.color && other.clientId === this.clientId
  }

  toDOM (): HTMLElement {
    const caret = document.createElement('span')
    caret.className = 'cm-mesh-caret'
    caret.style.borderLeftColor = this.color
    caret.dataset.client = String(this.clientId)
    const label = document.createElement('span')
    label.className = 'cm-mesh-caret-label'
    label.style.backgroundColor = this.color
    label.textContent = this.name
    caret.appendChild(label)
    return caret
  }

  ignoreEvent (): boolean {
    return true
  }
}

const caretDecorations = EditorView.decorations.compute([cursorsField], (state): DecorationSet => {
  const widgets = state.field(cursorsField).map(c =>
    Decoration.widget({ widget: new CaretWidget(c.name, c.color, c.clientId), side: 1 }).range(c.head))
  return Decoration.set(widgets, true)
})

/** A selection rectangle in a participant's colour. */
class TintedRect implements LayerMarker {
  constructor (readonly rect: RectangleMarker, readonly color: string) {}

  eq (other: LayerMarker): boolean {
    return other instanceof TintedRect && other.color === this.color && this.rect.eq(other.rect)
  }

  draw (): HTMLElement {
    const el = this.rect.draw()
    el.style.backgroundColor = `${this.color}40`
    return el
  }

  update (dom: HTMLElement, old: LayerMarker): boolean {
    if (!(old instanceof TintedRect) || !this.rect.update(dom, old.rect)) return false
    dom.style.backgroundColor = `${this.color}40`
    return true
  }
}

const selectionLayer = layer({
  above: false,
  class: 'cm-mesh-selections',
  update: (update) => update.docChanged || update.viewportChanged || update.geometryChanged ||
    update.transactions.some(tr => tr.effects.some(e => e.is(setRemoteCursors))),
  markers (view) {
    const out: LayerMarker[] = []
    for (const c of view.state.field(cursorsField)) {
      for (const [a, h] of c.ranges) {
        if (a === h) continue
        for (const r of RectangleMarker.forRange(view, 'cm-mesh-selection', EditorSelection.range(a, h))) out.push(new TintedRect(r, c.color))
      }
    }
    return out
  },
})

/** Whether `view` draws exactly `cursors` already. Most awareness changes leave a file's
 * cursors where they are drawn: a cursor that moved because its owner typed was mapped
 * through the edit when it arrived, and a change of someone's view or of another file
 * moves nothing here. A transaction for those would make the editor redraw its cursor and
 * selection layers (a frame of layout and paint) for nothing, on every keystroke. */
export function showsCursors (view: EditorView, cursors: readonly RemoteCursor[]): boolean {
  return sameCursors(view.state.field(cursorsField), clampCursors(cursors, view.state.doc.length))
}

/** The extension that shows remote cursors. */
export function remoteCursors (): Extension {
  return [cursorsField, caretDecorations, selectionLayer]
}
