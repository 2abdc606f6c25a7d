/**
 * A room's tokens in this tab: the link's token (from the join link's `?token=`) and the
 * seat token the server hands out in `welcome` (decision 011). The page reads the link's
 * token from its URL once, keeps it in this tab's sessionStorage (a reload needs it; other
 * tabs and later visits do not get it) and takes it out of the address bar, so it does not
 * end up in screenshots, shared screens or the history. The room socket never carries a
 * token in its URL: the page sends it as the first `auth` message, so it stays out of proxy
 * access logs.
 *
 * Each connection shows the seat's token when the page has one (the seat, not the link,
 * holds the role, and reconnecting with it takes no further use of the link), else the
 * link's. Storage is passed in, so this runs in Node's unit tests.
 */
import type { SeatToken } from './messages.js'

/** What the page needs of `sessionStorage`. */
export type TokenStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>

const linkKey = (room: string) => `mesh.link:${room}`
const seatKey = (room: string) => `mesh.seat:${room}`

export class RoomCredentials {
  constructor (private readonly storage: TokenStorage, readonly roomId: string) {}

  /**
   * Takes the link token from a join link's query (`urlToken`), when there is one: a token
   * other than the kept one is another link, so the seat of the old one is forgotten (that
   * link may grant another role). Returns whether the page has any token for the room.
   */
  adopt (urlToken: string | null): boolean {
    if (urlToken) {
      if (this.storage.getItem(linkKey(this.roomId)) !== urlToken) this.forgetSeat()
      this.storage.setItem(linkKey(this.roomId), urlToken)
    }
    return this.linkToken() !== null || this.seat() !== null
  }

  /** The token of the link this tab joined with. */
  linkToken (): string | null {
    return this.storage.getItem(linkKey(this.roomId))
  }

  /** The seat this tab holds, if the server gave it one. */
  seat (): SeatToken | null {
    try {
      const v: unknown = JSON.parse(this.storage.getItem(seatKey(this.roomId)) ?? 'null')
      if (typeof v !== 'object' || v === null) return null
      const { id, token } = v as Record<string, unknown>
      return typeof id === 'string' && typeof token === 'string' ? { id, token } : null
    } catch {
      return null
    }
  }

  /** Keeps the seat `welcome` named, for the next connection. */
  keepSeat (seat: SeatToken): void {
    this.storage.setItem(seatKey(this.roomId), JSON.stringify(seat))
  }

  /** Forgets the seat (kicked, or the server no longer knows it). */
  forgetSeat (): void {
    this.storage.removeItem(seatKey(this.roomId))
  }

  /** The token the next connection shows: the seat's, else the link's. */
  connectToken (): { token: string; seat: boolean } | null {
    const seat = this.seat()
    if (seat) return { token: seat.token, seat: true }
    const link = this.linkToken()
    return link ? { token: link, seat: false } : null
  }

  /** The token for this room's REST calls to the page's own origin: the seat's, which
   * carries the role the person has now (a writer made host may then call host routes). */
  restToken (): string | null {
    return this.connectToken()?.token ?? null
  }
}

/** The query string without `token`, for the address bar. */
export function withoutToken (search: string): string {
  const params = new URLSearchParams(search)
  params.delete('token')
  const rest = params.toString()
  return rest ? `?${rest}` : ''
}
