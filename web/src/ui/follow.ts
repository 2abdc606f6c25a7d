/**
 * Follow mode: the page shows what another participant shows. It opens the file in front of
 * them and scrolls to the lines they see (or their cursor, when their client does not say
 * what it shows), as their awareness state changes. Following stops when we take over (type,
 * click into an editor, open another file, press Escape), when they leave, or by the button.
 * Our own state says whom we follow (`following`), so everyone sees it.
 */
import type { MeshProvider } from '../net/provider.js'
import { readPresence, type PresenceState } from '../room/presence.js'

/** Where following someone takes the page: a file, and a line or an offset in it. */
export interface FollowPlace {
  path: string
  /** The first line they see (0-based), when their client says. */
  line: number | null
  /** Their caret (UTF-16 offset) when it is in that file. */
  head: number | null
}

/** Where a participant's state says they are; null when it says nothing we can follow. */
export function followPlace (state: PresenceState): FollowPlace | null {
  const path = state.view?.path ?? state.cursor?.path
  if (!path) return null
  const line = state.view?.path === path ? state.view.start_line : null
  const head = state.cursor?.path === path ? state.cursor.head : null
  return { path, line, head }
}

/** What the follower needs from the workspace. */
export interface FollowHost {
  /** Shows `place` without taking the keyboard focus; false when the file is not in the room. */
  reveal: (place: FollowPlace) => boolean
  /** Publishes whom we follow in our awareness state. */
  setFollowing: (connId: number | null) => void
}

export class Follower {
  private target: number | null = null
  private lastPlace = ''
  private readonly listeners: Array<(target: number | null, reason: string | null) => void> = []

  constructor (private readonly provider: MeshProvider, private readonly host: FollowHost) {
    provider.awareness.on('change', () => this.apply())
    provider.on('participants', () => {
      if (this.target !== null && !provider.participants.has(this.target)) this.stop('they left the room')
    })
    // Following is a connection's business: after a reconnect our connection id is new and
    // theirs may be too.
    provider.on('status', (s) => { if (s.state !== 'connected' && this.target !== null) this.stop('the connection was lost') })
  }

  /** Whom we follow (connection id). */
  get following (): number | null {
    return this.target
  }

  /** Calls `fn` whenever following starts or stops (with why it stopped). */
  onChange (fn: (target: number | null, reason: string | null) => void): void {
    this.listeners.push(fn)
  }

  start (connId: number): void {
    if (connId === this.provider.connId || !this.provider.participants.has(connId)) return
    this.target = connId
    this.lastPlace = ''
    this.host.setFollowing(connId)
    for (const fn of this.listeners) fn(connId, null)
    this.apply()
  }

  /** Stops following, saying why (shown to the user). */
  stop (reason: string): void {
    if (this.target === null) return
    this.target = null
    this.host.setFollowing(null)
    for (const fn of this.listeners) fn(null, reason)
  }

  private apply (): void {
    if (this.target === null) return
    const p = this.provider.participants.get(this.target)
    if (p?.doc_client_id === undefined) return
    const place = followPlace(readPresence(this.provider.awareness.getStates().get(p.doc_client_id)))
    if (!place) return
    const key = `${place.path}\u0000${place.line}\u0000${place.head}`
    if (key === this.lastPlace) return
    this.lastPlace = key
    this.host.reveal(place)
  }
}
