/**
 * Join links: `ORIGIN/join/ROOM?token=TOKEN`. The page opens only links to its own origin,
 * so a token it is given never travels to another server.
 */

/** A room id as the server writes it: 32 hex digits (128 random bits). */
export const ROOM_ID = /^[0-9a-f]{32}$/

/** The path and query of a join link for this origin, or a reason it cannot be opened. */
export function joinPathOf (link: string, origin: string): { path: string } | { problem: string } {
  let url: URL
  try {
    url = new URL(link.trim(), origin)
  } catch {
    return { problem: 'this is not a link' }
  }
  const m = /^\/join\/([^/]+)$/.exec(url.pathname)
  if (!m) return { problem: 'this is not a mesh join link (it should look like …/join/ROOM?token=…)' }
  if (!ROOM_ID.test(m[1])) return { problem: 'the room id in this link is malformed; ask for the link again' }
  if (!url.searchParams.get('token')) return { problem: 'this link has no token; ask for the whole link' }
  if (url.origin !== origin) {
    return { problem: `this link is for another server (${url.origin}); open it in the browser directly: this page sends tokens only to its own server` }
  }
  return { path: `${url.pathname}${url.search}` }
}

