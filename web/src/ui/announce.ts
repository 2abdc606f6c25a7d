/**
 * What everyone in the room is told as it happens (short notices): who joined and left, role
 * changes (ours says what it means: a reader's editor is read-only), removals, approval
 * turned on or off, and who started or stopped following us. The sentences come from
 * room/host.ts; this only listens and shows them.
 */
import type { MeshProvider } from '../net/provider.js'
import type { Participant } from '../net/messages.js'
import { readPresence } from '../room/presence.js'
import { approvalText, actorName, followersOf, roleChangeText } from '../room/host.js'

/** How the server lists a connection before its `hello` (and a stock Yjs client, which
 * never sends one): `mesh_protocol`'s anonymous participant. */
const unnamed = (p: Participant) => p.name === 'anonymous' && p.client === 'yjs'

export class Announcer {
  private followers = new Set<number>()

  constructor (private readonly provider: MeshProvider, notify: (text: string) => void) {
    const person = (p: Participant) => !p.companion && p.conn_id !== provider.connId
    provider.on('joined', ({ participant: p, before }) => {
      // Said once per connection, with the name its `hello` gave: the server lists a
      // connection as it joins (a stock Yjs client's placeholder) and again once named.
      if (!person(p) || unnamed(p) || (before && !unnamed(before))) return
      notify(`${p.name} joined${p.role === 'reader' ? ' (read only)' : ''}.`)
    })
    provider.on('left', (p) => { if (person(p) && !unnamed(p)) notify(`${p.name} left.`) })
    provider.on('message', (m) => {
      switch (m.type) {
        case 'role_changed': {
          const mine = m.seat === provider.seat
          const whom = provider.seatNames.get(m.seat) ?? null
          notify(roleChangeText({ by: m.by, role: m.role, mine, whom }, provider.name))
          break
        }
        case 'seat_kicked': {
          const whom = provider.seatNames.get(m.seat) ?? 'someone'
          notify(`${actorName(m.by, provider.name)} removed ${whom} from the session.`)
          break
        }
        case 'approval_changed':
          notify(approvalText(m.on, m.by, provider.name))
          break
        default: break
      }
    })
    provider.awareness.on('change', () => this.checkFollowers(notify))
    provider.on('welcome', () => { this.followers = new Set() })
  }

  private checkFollowers (notify: (text: string) => void): void {
    const states = this.provider.awareness.getStates()
    const following = new Map<number, number | null>()
    for (const p of this.provider.participants.values()) {
      if (p.doc_client_id !== undefined) following.set(p.conn_id, readPresence(states.get(p.doc_client_id)).following)
    }
    const change = followersOf(following, this.provider.connId, this.followers)
    this.followers = change.now
    const name = (conn: number) => this.provider.participants.get(conn)?.name
    for (const c of change.started) { const n = name(c); if (n) notify(`${n} is following you.`) }
    for (const c of change.stopped) { const n = name(c); if (n) notify(`${n} stopped following you.`) }
  }
}
