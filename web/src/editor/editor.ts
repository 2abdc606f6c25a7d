/**
 * One file's editor: CodeMirror 6 bound to the file's `Y.Text` with y-codemirror.next's
 * sync and undo parts (its own remote-selection part reads another cursor shape; mesh's
 * cursors are drawn by `cursors.ts`), syntax highlighting by extension, read-only for
 * readers.
 */
import type * as Y from 'yjs'
import { Compartment, EditorState, type Extension } from '@codemirror/state'
import {
  EditorView, type ViewUpdate, crosshairCursor, drawSelection, dropCursor, highlightActiveLine, highlightActiveLineGutter,
  highlightSpecialChars, keymap, lineNumbers, rectangularSelection,
} from '@codemirror/view'
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import { bracketMatching, defaultHighlightStyle, indentOnInput, syntaxHighlighting } from '@codemirror/language'
import { highlightSelectionMatches, searchKeymap } from '@codemirror/search'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import { remoteCursors, setRemoteCursors, showsCursors } from './cursors.js'
import { breakpoints } from './breakpoints.js'
import { languageOf } from './languages.js'
import type { RemoteCursor } from '../room/presence.js'

export interface FileEditorOptions {
  path: string
  text: Y.Text
  readOnly: boolean
  /** The page's CSP nonce, for the `<style>` elements CodeMirror adds. */
  nonce: string
  /** The local selection, focus or visible lines changed. */
  onLocalChange: () => void
  /** Someone typed into a read-only editor: tell them why nothing happens. */
  onReadOnlyAttempt: () => void
  /** The user pressed a key or clicked in the editor (follow mode stops then). */
  onUserInput?: () => void
}

export class FileEditor {
  readonly view: EditorView
  readonly path: string
  private readonly readOnly = new Compartment()
  private readonly language = new Compartment()
  /** The lines on screen at the last measure, or null before the first. */
  private shown: [number, number] | null = null
  /** The scroller's vertical position at its last scroll event. */
  private scrollTop = 0

  constructor (parent: HTMLElement, opts: FileEditorOptions) {
    this.path = opts.path
    const extensions: Extension[] = [
      // Sync and per-user undo, without y-codemirror's own remote selections (awareness null).
      // First, so that its plugin turns a keystroke into a Yjs update (and the provider sends
      // it) before the other plugins update: the gutters and layers redraw after the send.
      yCollab(opts.text, null),
      EditorView.cspNonce.of(opts.nonce),
      // The debugger's breakpoint gutter and current line (its marks come from the debug panel).
      breakpoints(opts.path),
      lineNumbers(),
      highlightActiveLineGutter(),
      highlightSpecialChars(),
      drawSelection(),
      dropCursor(),
      EditorState.allowMultipleSelections.of(true),
      indentOnInput(),
      syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
      bracketMatching(),
      rectangularSelection(),
      crosshairCursor(),
      highlightActiveLine(),
      highlightSelectionMatches(),
      keymap.of([...yUndoManagerKeymap, ...defaultKeymap, ...searchKeymap, indentWithTab]),
      remoteCursors(),
      this.readOnly.of(EditorState.readOnly.of(opts.readOnly)),
      this.language.of([]),
      EditorView.updateListener.of(update => {
        this.trackShownLines(update)
        if (update.selectionSet || update.docChanged || update.focusChanged || update.viewportChanged) opts.onLocalChange()
      }),
      EditorView.domEventHandlers({
        mousedown: () => {
          opts.onUserInput?.()
          return false
        },
        beforeinput: (_e, view) => {
          if (view.state.readOnly) opts.onReadOnlyAttempt()
          return false
        },
        keydown: (e, view) => {
          if (!['Shift', 'Control', 'Alt', 'Meta'].includes(e.key)) opts.onUserInput?.()
          if (view.state.readOnly && e.key.length === 1 && !e.ctrlKey && !e.metaKey) opts.onReadOnlyAttempt()
          return false
        },
      }),
    ]
    this.view = new EditorView({
      parent,
      state: EditorState.create({ doc: opts.text.toString(), extensions }),
    })
    this.view.dom.dataset.path = opts.path
    // A vertical scroll changes the lines on screen (typing at the end of a long line scrolls
    // sideways on every key, which changes none).
    this.view.scrollDOM.addEventListener('scroll', () => {
      const top = this.view.scrollDOM.scrollTop
      if (top !== this.scrollTop) this.shown = null
      this.scrollTop = top
    }, { passive: true })
    // A read-only window on the editor for end-to-end tests and for debugging from the
    // console: the exact text and selection, which the rendered DOM does not give.
    Object.defineProperty(this.view.dom, 'meshEditor', {
      value: Object.freeze({
        text: () => this.view.state.doc.toString(),
        selection: () => this.view.state.selection.ranges.map(r => ({ anchor: r.anchor, head: r.head })),
        readOnly: () => this.view.state.readOnly,
      }),
    })
    const lang = languageOf(opts.path)
    if (lang) {
      lang.load().then(support => {
        this.view.dispatch({ effects: this.language.reconfigure(support) })
      }).catch(e => console.warn(`mesh: no highlighting for ${opts.path}`, e))
    }
  }

  setReadOnly (readOnly: boolean): void {
    this.view.dispatch({ effects: this.readOnly.reconfigure(EditorState.readOnly.of(readOnly)) })
  }

  setCursors (cursors: RemoteCursor[]): void {
    if (showsCursors(this.view, cursors)) return
    this.view.dispatch({ effects: setRemoteCursors.of(cursors) })
  }

  /** The lines on screen as last measured (see {@link visibleLines}), without touching the
   * layout: what the cursor publication reads after every keystroke, ours or anyone's. Reading
   * the layout there forced the browser to lay the page out between a keystroke and its
   * frame (and CodeMirror to measure early), on every page of the room. */
  shownLines (): [number, number] {
    this.shown ??= this.visibleLines()
    return this.shown
  }

  /** Keeps {@link shownLines} current: CodeMirror's own measuring (an update without
   * transactions) has just read the layout, so reading it again then costs nothing; an edit
   * that adds or removes lines, or a scroll, makes the next reader measure. */
  private trackShownLines (update: ViewUpdate): void {
    if (update.transactions.length === 0) {
      if (update.viewportChanged || update.geometryChanged || update.heightChanged) this.shown = this.visibleLines()
    } else if (update.docChanged && update.state.doc.lines !== update.startState.doc.lines) {
      this.shown = null
    }
  }

  /** The lines on screen, 0-based (CodeMirror's viewport also holds lines drawn beyond the
   * edges; someone following us wants to see what we see). Reads the layout. */
  visibleLines (): [number, number] {
    const scroller = this.view.scrollDOM
    const doc = this.view.state.doc
    const rect = scroller.getBoundingClientRect()
    if (rect.height === 0) {
      // Hidden (another tab is in front): the viewport is the best we know.
      const { from, to } = this.view.viewport
      return [doc.lineAt(from).number - 1, doc.lineAt(to).number - 1]
    }
    const top = this.view.lineBlockAtHeight(scroller.scrollTop).from
    const bottom = this.view.lineBlockAtHeight(scroller.scrollTop + scroller.clientHeight - 1).from
    return [doc.lineAt(top).number - 1, doc.lineAt(bottom).number - 1]
  }

  /** Scrolls to show what someone else sees: line `line` (0-based) at the top, unless that
   * would leave their caret `head` below our (perhaps smaller) screen, in which case the
   * caret's line goes to the bottom; with no line known, the caret in the middle. */
  scrollTo (place: { line: number | null; head: number | null }): void {
    const doc = this.view.state.doc
    const head = place.head === null ? null : Math.min(place.head, doc.length)
    let effect
    if (place.line !== null) {
      const top = Math.min(place.line + 1, doc.lines)
      const [ourTop, ourBottom] = this.visibleLines()
      const headLine = head === null ? null : doc.lineAt(head).number
      if (headLine !== null && headLine >= top && headLine - top >= ourBottom - ourTop) {
        effect = EditorView.scrollIntoView(head!, { y: 'end' })
      } else {
        effect = EditorView.scrollIntoView(doc.line(top).from, { y: 'start' })
      }
    } else if (head !== null) {
      effect = EditorView.scrollIntoView(head, { y: 'center' })
    }
    if (effect) this.view.dispatch({ effects: effect })
  }

  destroy (): void {
    this.view.destroy()
  }
}
