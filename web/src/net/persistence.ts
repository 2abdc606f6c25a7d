/**
 * The room's replica kept in this browser (IndexedDB, through y-indexeddb): edits made while
 * the server is out of reach survive a closed tab or a crashed browser, and are merged into
 * the room by the next connection's sync, like any offline edits. Opening a room also starts
 * from the kept replica, so the editor has the text before the server answers.
 *
 * One database per room (`mesh-room:<id>`), only for the rooms the home page lists: a room
 * that falls off the recent list has its replica deleted. A room the server says is gone
 * keeps it: it may hold the only copy of someone's last edits.
 */
import * as Y from 'yjs'
import { IndexeddbPersistence } from 'y-indexeddb'

/** How long opening the room waits for the kept replica to load. IndexedDB answers in
 * milliseconds; a browser with storage disabled or broken must not keep the room from
 * opening, so past this the room opens without it (and says so in the console). */
export const REPLICA_LOAD_TIMEOUT_MS = 3000

const dbName = (roomId: string) => `mesh-room:${roomId}`

/** The replica of one room in this browser. */
export class KeptReplica {
  private constructor (private readonly persistence: IndexeddbPersistence | null) {}

  /** Loads the kept replica of `roomId` into `doc` (waiting at most
   * {@link REPLICA_LOAD_TIMEOUT_MS}); from then on every change of `doc` is kept.
   * `fromRoom` tells the updates that came from the server (by their transaction origin). */
  static async open (roomId: string, doc: Y.Doc, fromRoom: (origin: unknown) => boolean): Promise<KeptReplica> {
    if (typeof indexedDB === 'undefined') return new KeptReplica(null)
    let persistence: IndexeddbPersistence
    try {
      persistence = new IndexeddbPersistence(dbName(roomId), doc)
    } catch (e) {
      console.warn('mesh: this browser cannot keep the room (IndexedDB refused):', e)
      return new KeptReplica(null)
    }
    keepRoomUpdatesLater(persistence, doc, fromRoom)
    let timer: ReturnType<typeof setTimeout> | undefined
    const loaded = await Promise.race([
      persistence.whenSynced.then(() => true),
      new Promise<false>(resolve => { timer = setTimeout(() => resolve(false), REPLICA_LOAD_TIMEOUT_MS) }),
    ])
    clearTimeout(timer)
    if (!loaded) console.warn(`mesh: the room's copy in this browser did not load within ${REPLICA_LOAD_TIMEOUT_MS} ms; opening without it`)
    return new KeptReplica(persistence)
  }

  /** Whether changes are being kept in this browser. */
  get keeping (): boolean {
    return this.persistence !== null
  }

}

/** Deletes the kept replica of a room this page has not open (it fell off the recent list). */
export function forgetReplica (roomId: string): void {
  if (typeof indexedDB === 'undefined') return
  const req = indexedDB.deleteDatabase(dbName(roomId))
  req.onerror = () => console.warn(`mesh: could not delete the kept copy of room ${roomId}`)
}

/**
 * Makes `persistence` keep the updates that came from the room after the task that applied
 * them, several in one IndexedDB transaction, instead of one transaction each inside it.
 * Opening a transaction costs about half a millisecond, and inside the task it delays the
 * frame that shows someone's keystroke. Nothing is at risk: the server relays an update only
 * once it is stored, so one that a crash keeps from IndexedDB comes back with the next sync.
 * The page's own edits are still kept at once (after whatever waits, so the order holds).
 */
function keepRoomUpdatesLater (persistence: IndexeddbPersistence, doc: Y.Doc, fromRoom: (origin: unknown) => boolean): void {
  const store = persistence._storeUpdate
  let waiting: Uint8Array[] = []
  let origin: unknown = null
  let timer: ReturnType<typeof setTimeout> | null = null
  const flush = () => {
    if (timer !== null) clearTimeout(timer)
    timer = null
    if (waiting.length === 0) return
    const update = waiting.length === 1 ? waiting[0] : Y.mergeUpdates(waiting)
    waiting = []
    store(update, origin)
  }
  doc.off('update', store)
  doc.on('update', (update: Uint8Array, from: unknown) => {
    if (!fromRoom(from)) {
      flush()
      store(update, from)
      return
    }
    waiting.push(update)
    origin = from
    timer ??= setTimeout(flush, 0)
  })
}
