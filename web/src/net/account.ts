/**
 * Who is signed in to this server (decision 012): `GET /auth/me`, asked once per page. The
 * session itself is an HttpOnly cookie the page never reads; the server puts it on the room
 * socket and on REST calls of this origin by itself.
 */

/** A signed-in user, as the provider named them. */
export interface User {
  id: string
  name: string
  email: string | null
}

/** Whether the server has accounts, and who this browser is signed in as. */
export interface Me {
  accounts: boolean
  user: User | null
}

/** The longest name or email the page shows (the server bounds them too). */
const MAX_CHARS = 254

function text (v: unknown): string | null {
  return typeof v === 'string' ? v.slice(0, MAX_CHARS) : null
}

/** Reads `/auth/me`'s answer; anything unexpected reads as "no accounts". */
export function parseMe (v: unknown): Me {
  if (typeof v !== 'object' || v === null) return { accounts: false, user: null }
  const o = v as Record<string, unknown>
  const u = typeof o.user === 'object' && o.user !== null ? o.user as Record<string, unknown> : null
  const id = u ? text(u.id) : null
  const name = u ? text(u.name) : null
  return {
    accounts: o.accounts === true,
    user: id !== null && name !== null ? { id, name, email: u ? text(u.email) : null } : null,
  }
}

let asked: Promise<Me> | null = null

/** This page's answer from `/auth/me` (asked once; a failure reads as "no accounts"). */
export function me (): Promise<Me> {
  asked ??= fetch('/auth/me', { credentials: 'same-origin' })
    .then(r => r.ok ? r.json() : null)
    .then(parseMe, () => ({ accounts: false, user: null }))
  return asked
}

/** Where the Sign in button goes: the server's `/auth/login`, back to `path` after. */
export function signInUrl (path: string): string {
  return `/auth/login?return_to=${encodeURIComponent(path)}`
}

/** Ends this browser's session. */
export async function signOut (): Promise<void> {
  await fetch('/auth/logout', { method: 'POST', credentials: 'same-origin' })
  asked = null
}
