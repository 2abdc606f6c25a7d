/**
 * Host control without DOM (decision 011): what the page says when roles and approval
 * change, which actions the host is offered for a participant, and who follows us. The
 * panels in ui/host.ts and ui/announce.ts only render what these return; the unit tests
 * run them in Node. How links and the audit trail read is in host-admin.ts.
 */
import type { Participant, Role } from '../net/messages.js'

/** "Ada", or "You" when the server's display name of who did it is ours. */
export function actorName (by: string, myName: string): string {
  return by === myName ? 'You' : by
}

/** The sentence for a role change: to the person it changed, what it means for them;
 * to everyone else, who did what. */
export function roleChangeText (change: { by: string; role: Role; mine: boolean; whom: string | null }, myName: string): string {
  const by = actorName(change.by, myName)
  if (change.mine) {
    switch (change.role) {
      case 'reader': return `${by} made you a reader: the editor is read-only now (you can still follow, select and chat).`
      case 'writer': return `${by} made you a writer: you can edit again.`
      case 'host': return `${by} made you the host: you let people in, change roles and manage links now.`
    }
  }
  const whom = change.whom ?? 'someone'
  return change.role === 'host' ? `${by} made ${whom} the host.` : `${by} made ${whom} a ${change.role}.`
}

/** The sentence for approval turned on or off. */
export function approvalText (on: boolean, by: string, myName: string): string {
  const who = actorName(by, myName)
  return on
    ? `${who} turned approval on: new people wait until the host lets them in.`
    : `${who} turned approval off: people with a link come in directly.`
}

/** A host action on a participant's seat. */
export type SeatAction = { kind: 'role'; role: Role; label: string } | { kind: 'kick'; label: string }

/** What the host is offered for a participant: a role other than theirs, and removing
 * them. Nothing for ourselves, for companions (their person's row has the actions), and
 * nothing at all unless we are the host. */
export function seatActions (p: Participant, me: { role: Role | null; seat: string | null }): SeatAction[] {
  if (me.role !== 'host' || p.companion || p.seat === me.seat) return []
  const out: SeatAction[] = []
  if (p.role === 'reader') out.push({ kind: 'role', role: 'writer', label: 'Make writer' })
  if (p.role === 'writer') out.push({ kind: 'role', role: 'reader', label: 'Make reader' })
  if (p.role !== 'host') out.push({ kind: 'role', role: 'host', label: 'Make host' })
  out.push({ kind: 'kick', label: 'Kick' })
  return out
}

/** Who follows `me` now, from everyone's `following` (conn id → whom they follow), and the
 * change since `before`: the page says "Ada is following you" once, and when she stops. */
export function followersOf (following: ReadonlyMap<number, number | null>, me: number | null, before: ReadonlySet<number>): { now: Set<number>; started: number[]; stopped: number[] } {
  const now = new Set<number>()
  if (me !== null) for (const [conn, whom] of following) if (whom === me && conn !== me) now.add(conn)
  return {
    now,
    started: [...now].filter(c => !before.has(c)),
    stopped: [...before].filter(c => !now.has(c)),
  }
}
