/**
 * Who is in the room: name (marked when not verified by sign-in), colour, role, the kind of
 * client, the file each one is in (from their awareness `view`/`cursor`, clickable to open
 * it), whom each one follows, a Follow button, and for the host the actions on each seat
 * (ui/host.ts). Companion connections (a person's debug adapter) are not listed as people.
 */
import type { MeshProvider } from '../net/provider.js'
import type { Participant } from '../net/messages.js'
import { readPresence, type PresenceState } from '../room/presence.js'
import { h, fill, dot } from './dom.js'
import type { Follower } from './follow.js'

export class PeoplePanel {
  readonly el: HTMLElement
  private readonly list: HTMLElement
  private readonly note: HTMLElement
  /** What the list shows (JSON), to skip rebuilding it unchanged. */
  private shown = ''

  constructor (
    private readonly provider: MeshProvider,
    private readonly openFile: (path: string) => void,
    private readonly follower: Follower,
    private readonly hostActions: (p: Participant) => HTMLElement | null = () => null,
  ) {
    this.list = h('ul', { class: 'people', 'data-testid': 'people' })
    this.note = h('p', { class: 'unverified-note', 'data-testid': 'unverified-note', hidden: true },
      'Names without ✓ are not verified: each such person typed their own.')
    this.el = h('section', { class: 'panel' }, h('h2', {}, 'People'), this.list, this.note)
    provider.on('participants', () => this.render())
    provider.on('role', () => this.render())
    provider.awareness.on('change', () => this.render())
    follower.onChange(() => this.render())
  }

  private render (): void {
    const states = this.provider.awareness.getStates()
    const people = [...this.provider.participants.values()].filter(p => !p.companion)
    people.sort((a, b) => (a.conn_id === this.provider.connId ? -1 : b.conn_id === this.provider.connId ? 1 : a.name.localeCompare(b.name)))
    this.note.hidden = people.every(p => p.verified)
    const rows = people.map(p => ({ p, presence: readPresence(p.doc_client_id !== undefined ? states.get(p.doc_client_id) : undefined) }))
    // Awareness changes with every keystroke of anyone (their cursor moves), but the list
    // shows only who is where, whom they follow and (for the host) what may be done to
    // them: rebuild it only when that changed, not a list of buttons per keystroke.
    const shown = JSON.stringify([this.provider.connId, this.provider.role, this.follower.following, rows.map(({ p, presence }) => [
      p, presence.cursor?.path ?? presence.view?.path, presence.following,
      presence.following !== null && this.provider.participants.get(presence.following)?.name,
    ])])
    if (shown === this.shown) return
    this.shown = shown
    fill(this.list, ...rows.map(({ p, presence }) => this.row(p, presence)))
  }

  private row (p: Participant, presence: PresenceState): HTMLElement {
    const where = presence.cursor?.path ?? presence.view?.path
    const me = p.conn_id === this.provider.connId
    const li = h('li', { 'data-conn': p.conn_id, 'data-role': p.role },
      dot(p.color),
      h('span', { class: 'name' }, p.name), me && h('small', {}, ' (you)'),
      p.verified && h('span', { class: 'verified', title: 'Signed in: the name is verified' }, '✓'),
      h('span', { class: `badge ${p.role}` }, p.role),
      h('small', { class: 'client' }, p.client))
    if (!me && p.doc_client_id !== undefined) {
      const on = this.follower.following === p.conn_id
      const follow = h('button', { type: 'button', class: on ? 'small following' : 'small', 'data-action': 'follow', 'aria-pressed': String(on), title: on ? `Stop following ${p.name}` : `Show what ${p.name} shows` }, on ? 'Following' : 'Follow')
      follow.addEventListener('click', () => (on ? this.follower.stop('you stopped') : this.follower.start(p.conn_id)))
      li.append(follow)
    }
    const actions = this.hostActions(p)
    if (actions) li.append(actions)
    if (where && !me) {
      const go = h('button', { type: 'button', class: 'link small', title: `Open ${where}` }, where)
      go.addEventListener('click', () => this.openFile(where))
      li.append(h('div', { class: 'where' }, 'in ', go))
    }
    if (presence.following !== null) {
      const whom = presence.following === this.provider.connId ? 'you' : this.provider.participants.get(presence.following)?.name
      if (whom) li.append(h('div', { class: 'where', 'data-testid': 'follows' }, `follows ${whom}`))
    }
    return li
  }
}
