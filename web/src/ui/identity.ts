/**
 * Who this browser is in rooms (name and colour) and the sessions it created or joined,
 * kept in this origin's localStorage only (the rooms' replicas: net/persistence.ts).
 */
import { MAX_NAME_CHARS } from '../net/messages.js'
import { forgetReplica } from '../net/persistence.js'

const NAME_KEY = 'mesh.name'
const COLOR_KEY = 'mesh.color'
const RECENT_KEY = 'mesh.recent'

/** How many recent sessions the home page lists. */
export const MAX_RECENT = 20

/** Colours people get, readable on the page's light background. */
const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#f032e6', '#9a6324', '#800000', '#000075']

export function storedName (): string | null {
  const n = localStorage.getItem(NAME_KEY)?.trim()
  return n ? n.slice(0, MAX_NAME_CHARS) : null
}

export function storeName (name: string): void {
  localStorage.setItem(NAME_KEY, name.trim().slice(0, MAX_NAME_CHARS))
}

export function myColor (): string {
  let c = localStorage.getItem(COLOR_KEY)
  if (!c || !/^#[0-9a-f]{6}$/i.test(c)) {
    c = PALETTE[Math.floor(Math.random() * PALETTE.length)]
    localStorage.setItem(COLOR_KEY, c)
  }
  return c
}

/** A session this browser knows, with the links it may share. */
export interface RecentSession {
  id: string
  name: string
  /** Path and query of the writer link on this origin. */
  joinPath?: string
  /** Path and query of the reader link on this origin. */
  readPath?: string
  /** What this browser last opened. */
  openedPath: string
  at: number
}

export function recentSessions (): RecentSession[] {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '[]')
    if (!Array.isArray(v)) return []
    return v.filter((r): r is RecentSession =>
      typeof r === 'object' && r !== null && typeof r.id === 'string' && typeof r.name === 'string' && typeof r.openedPath === 'string' && r.openedPath.startsWith('/join/'))
  } catch {
    return []
  }
}

export function rememberSession (s: Partial<RecentSession> & { id: string }): void {
  const all = recentSessions()
  const old = all.find(r => r.id === s.id)
  const merged: RecentSession = { name: s.id, openedPath: `/join/${s.id}`, at: Date.now(), ...old, ...s }
  const rest = all.filter(r => r.id !== s.id)
  const kept = [merged, ...rest]
  localStorage.setItem(RECENT_KEY, JSON.stringify(kept.slice(0, MAX_RECENT)))
  // A room no longer listed has no way back from the home page: its copy goes too.
  for (const gone of kept.slice(MAX_RECENT)) forgetReplica(gone.id)
}
