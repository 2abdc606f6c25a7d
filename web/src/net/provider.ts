/**
 * The room provider: one room socket that keeps a `Y.Doc` and an awareness in step with a
 * mesh room. It speaks y-protocols sync and awareness plus mesh's own messages (`auth` and
 * `hello` first, then `welcome`, participants, chat, roles, errors), reconnects with backoff
 * (with the seat's token once it has one), and tells the page how the connection is. Panels
 * use {@link MeshProvider.send} and the `message` event; nothing else in the page touches
 * the socket.
 *
 * Nothing of the room is sent before `welcome`: a room with approval on keeps a joiner in
 * its lobby until the host answers, and the joiner's sync and awareness wait for that.
 * `kicked`, `refused` and a close that retrying cannot help end the connection for good
 * (`ended`).
 *
 * Everything the server sends is untrusted: frames are size-checked, mesh messages parsed
 * into closed types ({@link parseServerMessage}), and a frame that breaks the sync protocol
 * closes the socket, so the next connection starts from a full sync.
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import { Backoff, FATAL_CLOSE_CODES } from './backoff.js'
import {
  PROTOCOL_VERSION, parseServerMessage,
  type ClientMessage, type ErrorCode, type Participant, type Role, type SeatToken, type ServerMessage,
} from './messages.js'
import {
  MAX_SERVER_FRAME_BYTES, MSG_AUTH, MSG_AWARENESS, MSG_MESH, MSG_QUERY_AWARENESS, MSG_SYNC,
  encodeMesh, readMeshPayload,
} from './wire.js'

/** How often the page checks that the server still answers: browsers notice a dead TCP
 * connection only after minutes. */
export const PING_INTERVAL_MS = 20_000

/** A ping unanswered this long means the connection is dead: close it and reconnect. */
export const PONG_TIMEOUT_MS = 10_000

/** Where the connection stands, for the status bar. */
export type ConnectionStatus =
  | { state: 'connecting' }
  | { state: 'waiting'; message: string }
  | { state: 'connected' }
  | { state: 'offline'; retryInMs: number; reason: string }
  | { state: 'closed'; reason: string }

/** What the provider reports. */
export interface ProviderEvents {
  status: ConnectionStatus
  /** The first full sync with the room of each connection is done. */
  synced: void
  /** `welcome` arrived: our role and connection id are known. */
  welcome: { role: Role; connId: number }
  /** Our role is known or changed (with `welcome`, and live by the host). */
  role: Role
  /** The room keeps us in its lobby until the host answers. */
  lobby: { message: string }
  /** The room is over for this page: the host removed us or turned us away, or the token
   * stopped working. No reconnect follows. */
  ended: { kind: 'kicked' | 'refused' | 'closed'; message: string }
  /** The participant list changed. */
  participants: Participant[]
  /** Someone came, or a connection already listed was announced again (`before`): the
   * server lists a connection when it joins and again once its `hello` names it. Not sent
   * for the list a `welcome` brings. */
  joined: { participant: Participant; before?: Participant }
  /** Someone went (with who they were). */
  left: Participant
  /** Any mesh message (for panels). */
  message: ServerMessage
  /** The server refused something (with the id of the request, when it had one). */
  error: { code: ErrorCode; message: string; respondingTo?: number }
}

type Listener<T> = (value: T) => void

/** Who the page says it is in `hello`. */
export interface Identity {
  name: string
  color: string
}

/** Where the provider gets its token and keeps its seat (net/credentials.ts). */
export interface Credentials {
  connectToken: () => { token: string; seat: boolean } | null
  keepSeat: (seat: SeatToken) => void
  forgetSeat: () => void
}

export class MeshProvider {
  readonly doc: Y.Doc
  readonly awareness: awarenessProtocol.Awareness
  status: ConnectionStatus = { state: 'connecting' }
  role: Role | null = null
  connId: number | null = null
  /** Our seat's id (host messages and `role_changed` name seats). */
  seat: string | null = null
  /** Our name as the server assigned it (made unique in the room). */
  name: string
  /** Whether the room makes joiners wait for the host. */
  approval = false
  /** Why the room ended for this page, once it has. */
  ended: ProviderEvents['ended'] | null = null
  synced = false
  readonly participants = new Map<number, Participant>()
  /** The last name seen on each seat, kept after its person left: a kick, a role change or
   * an audit entry about someone who just left still reads with their name. */
  readonly seatNames = new Map<string, string>()

  private ws: WebSocket | null = null
  private readonly backoff = new Backoff()
  private openedAt = 0
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  private pingTimer: ReturnType<typeof setInterval> | null = null
  private pongDeadline: ReturnType<typeof setTimeout> | null = null
  private nextRequestId = 1
  private destroyed = false
  /** `welcome` came on this connection: the room's sync and awareness may flow. */
  private welcomed = false
  /** This connection showed the seat's token (so a refusal of it can fall back to the link). */
  private showedSeat = false
  private readonly listeners = new Map<keyof ProviderEvents, Set<Listener<never>>>()

  /**
   * @param url the room socket, `ws(s)://HOST/ws/ROOM` on the page's own origin, without a
   *   token: the token goes in the first message
   * @param options.connect false to connect later, with {@link MeshProvider.start}: a page
   * creates the provider before anything else listens to the document's updates, because
   * the document calls its listeners in the order they came, and a keystroke should reach
   * the socket before it reaches IndexedDB (whose transaction costs more than the send).
   */
  constructor (
    private readonly url: string,
    readonly identity: Identity,
    private readonly credentials: Credentials,
    doc = new Y.Doc(),
    options: { connect?: boolean } = {},
  ) {
    this.doc = doc
    this.name = identity.name
    this.awareness = new awarenessProtocol.Awareness(doc)
    this.doc.on('update', this.onDocUpdate)
    this.awareness.on('update', this.onAwarenessUpdate)
    window.addEventListener('online', this.onOnline)
    window.addEventListener('pagehide', this.onPageHide)
    if (options.connect !== false) this.connect()
  }

  /** Connects a provider created with `connect: false` (nothing if it is connected, waiting
   * to reconnect, or destroyed). */
  start (): void {
    if (this.ws === null && this.retryTimer === null && !this.destroyed) this.connect()
  }

  on<K extends keyof ProviderEvents> (event: K, fn: Listener<ProviderEvents[K]>): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(fn as Listener<never>)
    return () => set.delete(fn as Listener<never>)
  }

  private emit<K extends keyof ProviderEvents> (event: K, value: ProviderEvents[K]): void {
    for (const fn of this.listeners.get(event) ?? []) {
      try {
        (fn as Listener<ProviderEvents[K]>)(value)
      } catch (e) {
        console.error(`mesh: a ${event} listener failed`, e)
      }
    }
  }

  /** Sends a mesh message; returns its request id (answers name it as `responding_to`).
   * Returns null when the socket is not open: the caller tells the user to retry. */
  send (msg: ClientMessage): number | null {
    if (this.ws?.readyState !== WebSocket.OPEN) return null
    const id = this.nextRequestId++
    this.ws.send(encodeMesh(msg, id))
    return id
  }

  /** The token for this room's REST calls (to the page's own origin only). */
  restToken (): string | null {
    return this.credentials.connectToken()?.token ?? null
  }

  /** Closes the socket for good and clears our awareness state. */
  destroy (): void {
    this.destroyed = true
    this.onPageHide()
    this.clearTimers()
    window.removeEventListener('online', this.onOnline)
    window.removeEventListener('pagehide', this.onPageHide)
    this.doc.off('update', this.onDocUpdate)
    this.awareness.off('update', this.onAwarenessUpdate)
    this.ws?.close(1000, 'left the room')
    this.ws = null
  }

  private setStatus (status: ConnectionStatus): void {
    this.status = status
    this.emit('status', status)
  }

  private connect (): void {
    if (this.destroyed) return
    this.setStatus({ state: 'connecting' })
    const ws = new WebSocket(this.url)
    ws.binaryType = 'arraybuffer'
    this.ws = ws
    ws.onopen = () => this.onOpen(ws)
    ws.onmessage = (event) => this.onMessage(ws, event)
    ws.onclose = (event) => this.onClose(ws, event)
  }

  private onOpen (ws: WebSocket): void {
    this.openedAt = Date.now()
    this.synced = false
    this.welcomed = false
    const auth = this.credentials.connectToken()
    this.showedSeat = auth?.seat ?? false
    if (auth) ws.send(encodeMesh({ type: 'auth', token: auth.token }))
    ws.send(encodeMesh({
      type: 'hello',
      version: PROTOCOL_VERSION,
      name: this.identity.name,
      color: this.identity.color,
      client: 'browser',
      doc_client_id: this.doc.clientID,
    }))
  }

  /** The room let us in: our sync and awareness go now, and the ping starts. */
  private onWelcomed (ws: WebSocket): void {
    this.welcomed = true
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, MSG_SYNC)
    syncProtocol.writeSyncStep1(enc, this.doc)
    ws.send(encoding.toUint8Array(enc))
    if (this.awareness.getLocalState() !== null) this.sendAwareness([this.doc.clientID])
    if (this.pingTimer === null) this.pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS)
  }

  private ping (): void {
    if (this.pongDeadline !== null || this.ws?.readyState !== WebSocket.OPEN) return
    this.ws.send(encodeMesh({ type: 'ping', nonce: Date.now() }))
    this.pongDeadline = setTimeout(() => {
      this.pongDeadline = null
      this.ws?.close(4000, `no answer to a ping within ${PONG_TIMEOUT_MS} ms`)
    }, PONG_TIMEOUT_MS)
  }

  private onMessage (ws: WebSocket, event: MessageEvent): void {
    if (ws !== this.ws) return
    if (!(event.data instanceof ArrayBuffer)) {
      console.warn('mesh: ignored a text frame; the room socket speaks binary frames')
      return
    }
    if (event.data.byteLength > MAX_SERVER_FRAME_BYTES) {
      ws.close(4009, 'frame over the page\'s limit')
      return
    }
    const dec = decoding.createDecoder(new Uint8Array(event.data))
    try {
      while (decoding.hasContent(dec)) this.readMessage(ws, dec)
    } catch (e) {
      // A frame we cannot read leaves the replica in an unknown state: start over with a
      // fresh connection, whose sync repairs whatever this one missed.
      console.error('mesh: unreadable frame from the server; reconnecting', e)
      ws.close(4400, 'unreadable frame')
    }
  }

  private readMessage (ws: WebSocket, dec: decoding.Decoder): void {
    const tag = decoding.readVarUint(dec)
    switch (tag) {
      case MSG_SYNC: {
        const enc = encoding.createEncoder()
        encoding.writeVarUint(enc, MSG_SYNC)
        const kind = syncProtocol.readSyncMessage(dec, enc, this.doc, this)
        if (encoding.length(enc) > 1) ws.send(encoding.toUint8Array(enc))
        if (kind === syncProtocol.messageYjsSyncStep2 && !this.synced) {
          this.synced = true
          this.emit('synced', undefined)
        }
        return
      }
      case MSG_AWARENESS:
        awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(dec), this)
        return
      case MSG_AUTH: {
        // Permission denied, with a reason (sent to stock clients; mesh clients get `error`).
        decoding.readVarUint(dec)
        console.warn(`mesh: the server refused an edit: ${decoding.readVarString(dec)}`)
        return
      }
      case MSG_QUERY_AWARENESS:
        // A connection may speak only for its own awareness id.
        this.sendAwareness([this.doc.clientID])
        return
      case MSG_MESH: {
        let msg: ServerMessage
        try {
          msg = parseServerMessage(readMeshPayload(dec))
        } catch (e) {
          // One bad mesh message is dropped; the document is not affected.
          console.warn('mesh:', e instanceof Error ? e.message : e)
          return
        }
        this.onMesh(ws, msg)
        return
      }
      default:
        throw new Error(`unknown message tag ${tag}`)
    }
  }

  private onMesh (ws: WebSocket, msg: ServerMessage): void {
    switch (msg.type) {
      case 'welcome':
        this.role = msg.role
        this.connId = msg.conn_id
        this.seat = msg.seat.id
        this.name = msg.name
        this.approval = msg.approval
        this.credentials.keepSeat(msg.seat)
        this.participants.clear()
        for (const p of msg.participants) this.participants.set(p.conn_id, p)
        this.onWelcomed(ws)
        this.backoffConnected()
        this.emit('welcome', { role: msg.role, connId: msg.conn_id })
        this.emit('role', msg.role)
        this.listChanged()
        break
      case 'lobby':
        this.setStatus({ state: 'waiting', message: msg.message })
        this.emit('lobby', { message: msg.message })
        break
      case 'kicked':
        this.ended = { kind: 'kicked', message: `${msg.by} removed you from this session.` }
        this.credentials.forgetSeat()
        break
      case 'refused':
        this.ended = { kind: 'refused', message: msg.message }
        break
      case 'role_changed':
        for (const p of this.participants.values()) if (p.seat === msg.seat) p.role = msg.role
        if (msg.seat === this.seat) {
          this.role = msg.role
          this.emit('role', msg.role)
        }
        this.listChanged()
        break
      case 'approval_changed':
        this.approval = msg.on
        break
      case 'participant_joined': {
        const before = this.participants.get(msg.participant.conn_id)
        this.participants.set(msg.participant.conn_id, msg.participant)
        this.emit('joined', { participant: msg.participant, before })
        this.listChanged()
        break
      }
      case 'participant_left': {
        const who = this.participants.get(msg.conn_id)
        this.participants.delete(msg.conn_id)
        if (who) this.emit('left', who)
        this.listChanged()
        break
      }
      case 'participants':
        this.participants.clear()
        for (const p of msg.participants) this.participants.set(p.conn_id, p)
        this.listChanged()
        break
      case 'pong':
        if (this.pongDeadline !== null) clearTimeout(this.pongDeadline)
        this.pongDeadline = null
        break
      case 'error':
        this.emit('error', { code: msg.code, message: msg.message, respondingTo: msg.responding_to })
        break
      default:
        break
    }
    this.emit('message', msg)
  }

  /** The participant list changed: note each seat's name, and tell the panels. */
  private listChanged (): void {
    for (const p of this.participants.values()) {
      // A connection not yet named by its hello is listed as anonymous: not a name to keep.
      if (!(p.name === 'anonymous' && p.client === 'yjs')) this.seatNames.set(p.seat, p.name)
    }
    this.emit('participants', [...this.participants.values()])
  }

  private backoffConnected (): void {
    this.setStatus({ state: 'connected' })
  }

  private onClose (ws: WebSocket, event: CloseEvent): void {
    if (ws !== this.ws) return
    this.ws = null
    this.clearTimers()
    this.synced = false
    // Other people's awareness states come again with the next connection.
    const others = [...this.awareness.getStates().keys()].filter(id => id !== this.doc.clientID)
    awarenessProtocol.removeAwarenessStates(this.awareness, others, this)
    this.participants.clear()
    this.emit('participants', [])
    if (this.destroyed) return
    const reason = event.reason || describeClose(event.code)
    if (this.ended !== null) {
      this.setStatus({ state: 'closed', reason: this.ended.message })
      this.emit('ended', this.ended)
      return
    }
    if (event.code === UNAUTHORIZED_CLOSE && this.showedSeat && !this.welcomed) {
      // The server no longer knows our seat (its data was reset, or the seat token expired):
      // come in again through the link, as a new seat.
      console.warn(`mesh: the seat's token was refused (${reason}); joining through the link again`)
      this.credentials.forgetSeat()
      this.seat = null
      this.connect()
      return
    }
    if (FATAL_CLOSE_CODES.has(event.code)) {
      this.ended = { kind: 'closed', message: reason }
      this.setStatus({ state: 'closed', reason: `${reason} (${event.code})` })
      this.emit('ended', this.ended)
      return
    }
    this.backoff.closedAfter(this.openedAt ? Date.now() - this.openedAt : 0)
    this.openedAt = 0
    const wait = this.backoff.next()
    this.setStatus({ state: 'offline', retryInMs: wait, reason })
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      this.connect()
    }, wait)
  }

  private clearTimers (): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    if (this.pingTimer !== null) clearInterval(this.pingTimer)
    if (this.pongDeadline !== null) clearTimeout(this.pongDeadline)
    this.retryTimer = this.pingTimer = this.pongDeadline = null
  }

  private readonly onOnline = (): void => {
    if (this.status.state !== 'offline') return
    this.backoff.reset()
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    this.retryTimer = null
    this.connect()
  }

  private readonly onPageHide = (): void => {
    // Tell the others at once that we left, rather than after awareness times out.
    awarenessProtocol.removeAwarenessStates(this.awareness, [this.doc.clientID], 'local')
  }

  private readonly onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this || !this.welcomed || this.ws?.readyState !== WebSocket.OPEN) return
    // Edits made while offline are not lost: the next connection's sync sends them.
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, MSG_SYNC)
    syncProtocol.writeUpdate(enc, update)
    this.ws.send(encoding.toUint8Array(enc))
  }

  private readonly onAwarenessUpdate = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    if (origin !== 'local') return
    this.sendAwareness([...added, ...updated, ...removed].filter(id => id === this.doc.clientID))
  }

  private sendAwareness (clients: number[]): void {
    if (clients.length === 0 || !this.welcomed || this.ws?.readyState !== WebSocket.OPEN) return
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, MSG_AWARENESS)
    encoding.writeVarUint8Array(enc, awarenessProtocol.encodeAwarenessUpdate(this.awareness, clients))
    this.ws.send(encoding.toUint8Array(enc))
  }
}

/** The close code of a token the server does not take (`ErrorCode::Unauthorized`). */
const UNAUTHORIZED_CLOSE = 4401

/** Words for close codes that come without a reason. */
function describeClose (code: number): string {
  switch (code) {
    case 1001: return 'the server is going away'
    case 1006: return 'the connection was lost'
    case 1009: return 'a message was too large'
    case 1011: return 'the server hit an error'
    case 1012: return 'the server is restarting; reconnecting'
    default: return `the connection closed (${code})`
  }
}
