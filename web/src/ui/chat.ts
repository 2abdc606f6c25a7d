/**
 * The room's chat: the history is the shared `chat` array (the server appends each message
 * and keeps the newest 200), so a page that joins late sees what was said, and new messages
 * arrive as document changes like everything else. Sending is a `chat` mesh message.
 */
import * as Y from 'yjs'
import type { MeshProvider } from '../net/provider.js'
import { MAX_CHAT_BYTES, readChatEntry, utf8Length, type ChatEntry } from '../net/messages.js'
import { h, fill } from './dom.js'

/** The room's chat array (`mesh_protocol::doc::CHAT`). */
const CHAT = 'chat'

export class ChatPanel {
  readonly el: HTMLElement
  private readonly log: HTMLElement
  private readonly array: Y.Array<unknown>

  constructor (private readonly provider: MeshProvider, notify: (text: string) => void) {
    this.array = provider.doc.getArray(CHAT)
    this.log = h('ol', { class: 'chat-log', 'data-testid': 'chat-log', 'aria-live': 'polite' })
    const input = h('textarea', { rows: 2, placeholder: 'Message everyone (Enter sends)', 'data-testid': 'chat-input', maxlength: MAX_CHAT_BYTES })
    const form = h('form', { class: 'chat-form' }, input, h('button', { type: 'submit' }, 'Send'))
    const send = () => {
      const text = input.value.trim()
      if (!text) return
      if (utf8Length(text) > MAX_CHAT_BYTES) {
        notify(`a chat message may have at most ${MAX_CHAT_BYTES} bytes; this one has ${utf8Length(text)}`)
        return
      }
      if (provider.send({ type: 'chat', text }) === null) {
        notify('not connected: the message was not sent; try again once the status says connected')
        return
      }
      input.value = ''
    }
    form.addEventListener('submit', (e) => { e.preventDefault(); send() })
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send() }
    })
    this.el = h('section', { class: 'panel chat' }, h('h2', {}, 'Chat'), this.log, form)
    this.array.observe(() => this.render())
    this.render()
  }

  private render (): void {
    const entries = this.array.toArray().map(readChatEntry).filter((e): e is ChatEntry => e !== null)
    fill(this.log, ...entries.map(e => h('li', { 'data-id': e.id, class: e.conn_id === this.provider.connId ? 'mine' : '' },
      h('span', { class: 'author' }, e.author),
      h('time', { datetime: new Date(e.ts).toISOString() }, new Date(e.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })),
      h('p', { class: 'text' }, e.text))))
    this.log.scrollTop = this.log.scrollHeight
  }
}
