/**
 * Breakpoints in the editor's gutter, and the line the debugged program is stopped at.
 *
 * The marks come from the debug panel (a {@link BreakpointHost}, registered once per page):
 * the page's own breakpoints (●), lines where only someone else in the room has one (◆, the
 * same mark VS Code and Neovim show for the room's merged set), and the current line of the
 * selected stack frame. A click in the gutter asks the host to toggle ours; the host says no
 * to readers. Our breakpoints move with the text when lines are added or removed above them.
 */
import { RangeSet, StateEffect, StateField, type Extension } from '@codemirror/state'
import { Decoration, EditorView, GutterMarker, gutter, type DecorationSet } from '@codemirror/view'

/** What the gutter of one file shows (1-based lines). */
export interface BreakpointMarks {
  own: readonly number[]
  others: readonly number[]
  current: number | null
}

/** Who owns the breakpoints: the debug panel. */
export interface BreakpointHost {
  marks: (path: string) => BreakpointMarks
  toggle: (path: string, line: number) => void
  /** Our breakpoints in `path` are on these lines now, after an edit. */
  moved: (path: string, own: number[]) => void
}

let host: BreakpointHost | null = null

/** Registers the page's debug panel as the source of every editor's marks. */
export function setBreakpointHost (h: BreakpointHost | null): void {
  host = h
}

/** Replaces the marks shown in this editor. */
export const setBreakpointMarks = StateEffect.define<BreakpointMarks>()

const NONE: BreakpointMarks = { own: [], others: [], current: null }

class Mark extends GutterMarker {
  constructor (readonly kind: 'own' | 'others') {
    super()
  }

  eq (other: Mark): boolean {
    return other.kind === this.kind
  }

  toDOM (): Node {
    const span = document.createElement('span')
    span.className = `cm-bp cm-bp-${this.kind}`
    span.textContent = this.kind === 'own' ? '●' : '◆'
    span.title = this.kind === 'own' ? 'your breakpoint (click to remove)' : 'a breakpoint someone else set in the shared debug session'
    return span
  }
}

const OWN = new Mark('own')
const OTHERS = new Mark('others')

/** Sizes the gutter (CodeMirror keeps it invisible); a class of its own keeps it apart from
 * real marks. */
class Spacer extends GutterMarker {
  toDOM (): Node {
    const span = document.createElement('span')
    span.className = 'cm-bp cm-bp-spacer'
    span.textContent = '●'
    return span
  }
}
const currentLine = Decoration.line({ class: 'cm-debug-current' })

function linePos (doc: EditorView['state']['doc'], line: number): number | null {
  return line >= 1 && line <= doc.lines ? doc.line(line).from : null
}

/** The gutter, the current line, and the marks of the file `path`. */
export function breakpoints (path: string): Extension {
  const field = StateField.define<BreakpointMarks>({
    create: () => host?.marks(path) ?? NONE,
    update (marks, tr) {
      for (const e of tr.effects) if (e.is(setBreakpointMarks)) return e.value
      if (!tr.docChanged || marks.own.length === 0) return marks
      // Our breakpoints stay on their statement when lines are added or removed above it.
      const own = [...new Set(marks.own.flatMap(l => {
        const pos = linePos(tr.startState.doc, l)
        return pos === null ? [] : [tr.state.doc.lineAt(tr.changes.mapPos(pos, 1)).number]
      }))]
      return { ...marks, own }
    },
  })
  const markers = EditorView.updateListener.of(update => {
    if (!update.docChanged) return
    const before = update.startState.field(field).own
    const after = update.state.field(field).own
    if (before.join() !== after.join()) host?.moved(path, [...after])
  })
  const decorations = EditorView.decorations.compute([field], state => {
    const line = state.field(field).current
    const pos = line === null ? null : linePos(state.doc, line)
    return pos === null ? Decoration.none : Decoration.set([currentLine.range(pos)]) as DecorationSet
  })
  return [
    field,
    markers,
    decorations,
    gutter({
      class: 'cm-breakpoint-gutter',
      markers: view => {
        const marks = view.state.field(field)
        const own = new Set(marks.own)
        const ranges = [
          ...marks.own.map(l => ({ l, m: OWN })),
          ...marks.others.filter(l => !own.has(l)).map(l => ({ l, m: OTHERS })),
        ].flatMap(({ l, m }) => {
          const pos = linePos(view.state.doc, l)
          return pos === null ? [] : [m.range(pos)]
        })
        return RangeSet.of(ranges, true)
      },
      initialSpacer: () => new Spacer(),
      domEventHandlers: {
        mousedown: (view, line) => {
          host?.toggle(path, view.state.doc.lineAt(line.from).number)
          return true
        },
      },
    }),
  ]
}
