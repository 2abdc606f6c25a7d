import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { CLIENT_MESSAGE_TYPES, ProtocolError, SERVER_MESSAGE_TYPES, parseServerMessage, readChatEntry, safeColor } from '../../src/net/messages.js'

/** The variants of a Rust enum in protocol/src/messages.rs, as their snake_case tags. */
function rustVariants (name: string): string[] {
  // npm runs the tests in web/.
  const src = readFileSync(resolve(process.cwd(), '../protocol/src/messages.rs'), 'utf8')
  const start = src.indexOf(`pub enum ${name} {`)
  assert.ok(start >= 0, `no enum ${name} in messages.rs`)
  const body = src.slice(start, src.indexOf('\n}\n', start))
  return [...body.matchAll(/^ {4}([A-Z][A-Za-z0-9]*)\b/gm)].map(m => m[1].replace(/(?<!^)([A-Z])/g, '_$1').toLowerCase())
}

test('the mirror has every message of the Rust protocol, and no other', () => {
  assert.deepEqual([...SERVER_MESSAGE_TYPES].sort(), rustVariants('ServerMessage').sort())
  assert.deepEqual([...CLIENT_MESSAGE_TYPES].sort(), rustVariants('ClientMessage').sort())
})

const participant = { conn_id: 3, seat: 's1', verified: false, name: 'ada', color: '#ff8800', role: 'writer', client: 'browser', doc_client_id: 77 }
const seat = { id: 's1', token: 'tok' }

test('a welcome is read into its closed type, with the seat, the assigned name and approval', () => {
  const m = parseServerMessage({ type: 'welcome', version: 1, conn_id: 3, role: 'host', participants: [participant], seat, name: 'ada (2)', approval: true })
  assert.deepEqual(m, { type: 'welcome', version: 1, conn_id: 3, role: 'host', participants: [{ ...participant, companion: false, link: undefined }], seat, name: 'ada (2)', approval: true })
})

test('a welcome without a seat is refused: the page could not reconnect to its seat', () => {
  assert.throws(() => parseServerMessage({ type: 'welcome', version: 1, conn_id: 3, role: 'host', participants: [], name: 'a', approval: false }), /seat/)
})

test('host messages are read as decision 011 names them', () => {
  assert.deepEqual(parseServerMessage({ type: 'role_changed', seat: 's2', role: 'reader', by: 'ada', responding_to: 4 }),
    { type: 'role_changed', seat: 's2', role: 'reader', by: 'ada', responding_to: 4 })
  assert.deepEqual(parseServerMessage({ type: 'kicked', by: 'ada' }), { type: 'kicked', by: 'ada' })
  assert.deepEqual(parseServerMessage({ type: 'lobby', message: 'wait' }), { type: 'lobby', message: 'wait' })
  assert.deepEqual(parseServerMessage({ type: 'join_request', seat: 's3', name: 'bo', client: 'browser' }),
    { type: 'join_request', seat: 's3', name: 'bo', client: 'browser', verified: false })
  assert.deepEqual(parseServerMessage({ type: 'join_request', seat: 's4', name: 'Bo Builder', client: 'browser', verified: true }),
    { type: 'join_request', seat: 's4', name: 'Bo Builder', client: 'browser', verified: true })
  assert.deepEqual(parseServerMessage({ type: 'join_request_closed', seat: 's3', admitted: false, by: 'timeout' }),
    { type: 'join_request_closed', seat: 's3', admitted: false, by: 'timeout', responding_to: undefined })
  const link = { id: 'l1', role: 'reader', url: 'http://x/join/r?token=t', created_at: 1, expires_at: 2, max_uses: null, uses: 0, revoked: false, for_user: null }
  assert.deepEqual(parseServerMessage({ type: 'links', links: [link] }), { type: 'links', links: [link], responding_to: undefined })
  const invitation = { ...link, for_user: 'email:ada@example.test' }
  assert.deepEqual(parseServerMessage({ type: 'links', links: [invitation] }), { type: 'links', links: [invitation], responding_to: undefined })
  const entry = { ts: 5, kind: 'role_changed', actor: 'ada [s1]', subject: 's2', detail: 'writer' }
  assert.deepEqual(parseServerMessage({ type: 'audit_log', entries: [entry] }), { type: 'audit_log', entries: [entry], responding_to: undefined })
})

test('host messages of the wrong shape are refused by name', () => {
  assert.throws(() => parseServerMessage({ type: 'role_changed', seat: 's2', role: 'owner', by: 'ada' }), /role/)
  assert.throws(() => parseServerMessage({ type: 'approval_changed', on: 'yes', by: 'ada' }), /on is not true or false/)
  assert.throws(() => parseServerMessage({ type: 'links', links: [{ id: 'l1' }] }), /role/)
  assert.throws(() => parseServerMessage({ type: 'audit_log', entries: [{ ts: 1, kind: 'launched', actor: '', subject: '', detail: '' }] }), /kind/)
})

test('unknown types, bad roles and wrong shapes are refused by name', () => {
  assert.throws(() => parseServerMessage({ type: 'launch_missiles' }), (e: unknown) => e instanceof ProtocolError && /unknown message type/.test(e.message))
  assert.throws(() => parseServerMessage({ type: 'welcome', version: 1, conn_id: 3, role: 'admin', participants: [] }), /role/)
  assert.throws(() => parseServerMessage({ type: 'participant_left', conn_id: -1 }), /conn_id/)
  assert.throws(() => parseServerMessage([]), /not an object/)
  assert.throws(() => parseServerMessage({ type: 'error', code: 'oops', message: 'x' }), /code/)
})

test('errors carry the id of the request they answer', () => {
  const m = parseServerMessage({ type: 'error', code: 'forbidden', message: 'readers may not edit', responding_to: 7 })
  assert.deepEqual(m, { type: 'error', code: 'forbidden', message: 'readers may not edit', responding_to: 7 })
})

test('strings from the server are bounded and colours checked', () => {
  const m = parseServerMessage({ type: 'participant_joined', participant: { ...participant, name: 'x'.repeat(100_000), color: 'url(evil)' } })
  assert.equal(m.type, 'participant_joined')
  if (m.type !== 'participant_joined') return
  assert.equal(m.participant.name.length, 64)
  assert.equal(m.participant.color, '#888888')
  assert.equal(safeColor('#A0b1C2'), '#A0b1C2')
})

test('chat entries of another shape are skipped, not fatal', () => {
  assert.equal(readChatEntry({ id: 'a', author: 'ada', conn_id: 1, text: 'hi', ts: 5 })?.text, 'hi')
  assert.equal(readChatEntry({ id: 'a', author: 'ada', text: 'hi' }), null)
  assert.equal(readChatEntry('hi'), null)
})

test('ghost messages are read into closed types and wrong shapes are refused by name', () => {
  const ask = { kind: 'ask', text: 'why?', mode: 'explain', selection: { path: 'a.py', start_line: 1, end_line: 2, text: 'x' } }
  assert.deepEqual(parseServerMessage({ type: 'ghost', from: 2, name: 'rob', role: 'reader', command: ask }),
    { type: 'ghost', from: 2, name: 'rob', role: 'reader', command: ask, responding_to: undefined })
  assert.deepEqual(parseServerMessage({ type: 'ghost', from: 2, name: 'ada', role: 'writer', command: { kind: 'cancel' }, responding_to: 3 }),
    { type: 'ghost', from: 2, name: 'ada', role: 'writer', command: { kind: 'cancel', request: undefined }, responding_to: 3 })
  const state = {
    requests: [{ id: 1, asker: 'ada', mode: 'suggest', text: 'fix', status: 'working', received_chars: 4, message: null }],
    suggestions: [{ id: 1, asker: 'ada', files: ['a.py'], edits: [{ path: 'a.py', search: 'a', replace: 'b' }], omitted: false }],
  }
  assert.deepEqual(parseServerMessage({ type: 'ghost_state', from: 5, state }), { type: 'ghost_state', from: 5, state })
  assert.throws(() => parseServerMessage({ type: 'ghost', from: 2, name: 'x', role: 'writer', command: { kind: 'launch' } }), /unknown ghost command/)
  assert.throws(() => parseServerMessage({ type: 'ghost_state', from: 5, state: { ...state, requests: [{ ...state.requests[0], status: 'exploded' }] } }), /status/)
  const many = Array.from({ length: 65 }, () => state.suggestions[0])
  assert.throws(() => parseServerMessage({ type: 'ghost_state', from: 5, state: { requests: [], suggestions: many } }), /more than 64/)
})
