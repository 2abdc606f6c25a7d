/**
 * Join links. A mesh server hands out `http(s)://HOST/join/ROOM?token=TOKEN` (ROOM is 32
 * lower-case hex digits). People paste them in odd shapes — in angle brackets, with a
 * trailing full stop, wrapped in a `vscode://` link — so this module accepts those and
 * answers with either the canonical link or a message that says what is wrong.
 */

/** A join link taken apart. */
export interface JoinLink {
  /** The link to hand to the proxy, normalised. */
  link: string;
  /** The server's base URL, e.g. `http://127.0.0.1:7420`. */
  server: string;
  room: string;
  token: string;
}

/** The outcome of parsing: a link, or a message a person can act on. */
export type ParseResult = { ok: true; value: JoinLink } | { ok: false; error: string };

const ROOM_ID = /^[0-9a-f]{32}$/;

/** Punctuation that often sticks to a link copied out of a chat message or an email. */
const WRAPPERS = /^[\s<("'`]+|[\s>)"'`.,;]+$/g;

/** Parses what a person pasted as a join link. */
export function parseJoinLink(input: string): ParseResult {
  const text = input.replace(WRAPPERS, '');
  if (text === '') {
    return { ok: false, error: 'Paste the join link someone shared with you.' };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, error: `not a mesh link: "${shorten(text)}" is not a URL` };
  }
  // A link to this extension's URI handler wraps the real link: vscode://mesh.mesh-vscode/join?link=...
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    const inner = url.searchParams.get('link');
    if (inner !== null && inner !== text) {
      return parseJoinLink(inner);
    }
    return { ok: false, error: `not a mesh link: expected an http(s) link, got "${url.protocol}"` };
  }
  const parts = url.pathname.split('/').filter((p) => p !== '');
  const joinAt = parts.lastIndexOf('join');
  const room = joinAt >= 0 ? parts[joinAt + 1] : undefined;
  if (joinAt < 0 || room === undefined || joinAt + 2 !== parts.length) {
    return { ok: false, error: `not a mesh link: expected a path ending in /join/ROOM, got "${url.pathname}"` };
  }
  if (!ROOM_ID.test(room)) {
    return { ok: false, error: `not a mesh link: "${shorten(room)}" is not a room id (32 hex digits)` };
  }
  const token = url.searchParams.get('token');
  if (token === null || token === '') {
    return { ok: false, error: 'not a mesh link: it has no token (ask for the full link, with "?token=")' };
  }
  // Whatever comes before /join/ is the server's base path (a server behind a reverse proxy).
  const base = parts.slice(0, joinAt).join('/');
  const server = `${url.protocol}//${url.host}${base === '' ? '' : `/${base}`}`;
  const link = `${server}/join/${room}?token=${encodeURIComponent(token)}`;
  return { ok: true, value: { link, server, room, token } };
}

/** Builds the `vscode://` link that opens VS Code and joins, for an extension id. */
export function vscodeJoinUri(extensionId: string, link: string, scheme = 'vscode'): string {
  return `${scheme}://${extensionId}/join?link=${encodeURIComponent(link)}`;
}

/** True when the text looks enough like a join link to offer it from the clipboard. */
export function looksLikeJoinLink(text: string): boolean {
  return text.length < 2048 && parseJoinLink(text).ok;
}

function shorten(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
