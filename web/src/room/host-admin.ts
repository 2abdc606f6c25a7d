/**
 * How the host's links and audit trail read, without DOM (the dialogs in
 * ui/host-dialogs.ts, loaded only by a host, render these; the unit tests run them in Node).
 */
import type { AuditEntry, LinkInfo } from '../net/messages.js'

const MINUTE_MS = 60_000
const HOUR_MS = 60 * MINUTE_MS
const DAY_MS = 24 * HOUR_MS

/** "in 3 days", "in 5 h", "in 12 min", rounded down, for a time still ahead. */
export function timeLeft (ms: number): string {
  if (ms >= 2 * DAY_MS) return `in ${Math.floor(ms / DAY_MS)} days`
  if (ms >= 2 * HOUR_MS) return `in ${Math.floor(ms / HOUR_MS)} h`
  return `in ${Math.max(1, Math.floor(ms / MINUTE_MS))} min`
}

/** Where a link stands: usable, or why not. */
export type LinkState = 'active' | 'revoked' | 'expired' | 'used up'

export function linkState (link: LinkInfo, now: number): LinkState {
  if (link.revoked) return 'revoked'
  if (link.expires_at <= now) return 'expired'
  if (link.max_uses !== null && link.uses >= link.max_uses) return 'used up'
  return 'active'
}

/** How a link reads in the links dialog: its state or when it expires, and its uses. */
export function linkSummary (link: LinkInfo, now: number): { state: LinkState; expires: string; uses: string; only: string | null } {
  const state = linkState(link, now)
  return {
    state,
    expires: state === 'active' ? `expires ${timeLeft(link.expires_at - now)}` : state,
    uses: link.max_uses === null ? `${link.uses} used` : `${link.uses} of ${link.max_uses} used`,
    only: invitee(link.for_user),
  }
}

/** Whom a link is for, as the links dialog says it: `only ada@example.test`, `only the
 * owner`, or null for a link anyone may use. */
export function invitee (forUser: string | null): string | null {
  if (forUser === null) return null
  const at = forUser.indexOf(':')
  const [kind, who] = at < 0 ? ['', forUser] : [forUser.slice(0, at), forUser.slice(at + 1)]
  return kind === 'user' ? 'only the owner' : `only ${who}`
}

/** A join link from the server (which names its public URL) as a link on this page's
 * origin, or null when it is not a join link. The page hands out links it can open. */
export function linkOnOrigin (url: string, origin: string): string | null {
  try {
    const u = new URL(url)
    if (!/^\/join\/[0-9a-f]{32}$/.test(u.pathname) || !u.searchParams.get('token')) return null
    return `${origin}${u.pathname}${u.search}`
  } catch {
    return null
  }
}

/** The expiries the links dialog offers, in seconds. */
export const LINK_EXPIRIES: ReadonlyArray<{ label: string; secs: number }> = [
  { label: '1 hour', secs: 3600 },
  { label: '1 day', secs: 86_400 },
  { label: '7 days', secs: 7 * 86_400 },
]

/** What the host typed as a use limit: a whole number from 1, or none for no limit. */
export function parseMaxUses (text: string): { ok: true; value: number | undefined } | { ok: false; reason: string } {
  const t = text.trim()
  if (t === '') return { ok: true, value: undefined }
  if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 0xffff_ffff) {
    return { ok: false, reason: 'uses: give a whole number from 1, or leave it empty for no limit' }
  }
  return { ok: true, value: Number(t) }
}

const AUDIT_LABELS: Record<AuditEntry['kind'], string> = {
  join: 'joined',
  leave: 'left',
  role_changed: 'changed a role',
  kicked: 'removed someone',
  admitted: 'let someone in',
  refused: 'turned someone away',
  link_created: 'created a link',
  link_revoked: 'revoked a link',
  approval_changed: 'changed approval',
  run_started: 'started a run',
}

/** One audit entry as a line: who did what to whom. Seat ids are shown as names when the
 * page has seen the person (`nameOf`). */
export function auditLine (e: AuditEntry, nameOf: (seat: string) => string | undefined): string {
  const subject = e.subject ? (nameOf(e.subject) ?? e.subject) : ''
  const parts = [e.actor, AUDIT_LABELS[e.kind]]
  if (subject && e.kind !== 'join' && e.kind !== 'leave') parts.push(`· ${subject}`)
  if (e.detail) parts.push(`· ${e.detail}`)
  return parts.join(' ')
}
