import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { LinkInfo, Participant } from '../../src/net/messages.js'
import { approvalText, followersOf, roleChangeText, seatActions } from '../../src/room/host.js'
import { auditLine, invitee, linkOnOrigin, linkSummary, parseMaxUses, timeLeft } from '../../src/room/host-admin.js'

const person = (over: Partial<Participant>): Participant => ({ conn_id: 2, seat: 's2', verified: false, name: 'Bo', color: '#000000', role: 'writer', client: 'browser', companion: false, ...over })

test('only the host is offered actions, never on itself or on a companion connection', () => {
  const host = { role: 'host' as const, seat: 's1' }
  assert.deepEqual(seatActions(person({}), { role: 'writer', seat: 's1' }), [])
  assert.deepEqual(seatActions(person({ seat: 's1' }), host), [])
  assert.deepEqual(seatActions(person({ companion: true }), host), [])
  assert.deepEqual(seatActions(person({}), host).map(a => a.label), ['Make reader', 'Make host', 'Kick'])
  assert.deepEqual(seatActions(person({ role: 'reader' }), host).map(a => a.label), ['Make writer', 'Make host', 'Kick'])
})

test('a role change says to the person what it means for them, and to others who did what', () => {
  assert.match(roleChangeText({ by: 'Ada', role: 'reader', mine: true, whom: 'Bo' }, 'Bo'), /^Ada made you a reader: the editor is read-only/)
  assert.match(roleChangeText({ by: 'Ada', role: 'writer', mine: true, whom: 'Bo' }, 'Bo'), /can edit again/)
  assert.equal(roleChangeText({ by: 'Ada', role: 'reader', mine: false, whom: 'Bo' }, 'Cy'), 'Ada made Bo a reader.')
  assert.equal(roleChangeText({ by: 'Ada', role: 'host', mine: false, whom: 'Bo' }, 'Ada'), 'You made Bo the host.')
  assert.equal(approvalText(true, 'Ada', 'Bo'), 'Ada turned approval on: new people wait until the host lets them in.')
})

const link = (over: Partial<LinkInfo>): LinkInfo => ({ id: 'l1', role: 'reader', url: 'https://mesh.example/join/0123456789abcdef0123456789abcdef?token=t', created_at: 0, expires_at: 10 * 86_400_000, max_uses: null, uses: 0, revoked: false, for_user: null, ...over })

test('a link reads as usable with its expiry and uses, or says why it no longer works', () => {
  assert.deepEqual(linkSummary(link({}), 0), { state: 'active', expires: 'expires in 10 days', uses: '0 used', only: null })
  assert.equal(linkSummary(link({ revoked: true }), 0).expires, 'revoked')
  assert.equal(linkSummary(link({ expires_at: 5 }), 5).state, 'expired')
  assert.deepEqual(linkSummary(link({ max_uses: 2, uses: 2 }), 0), { state: 'used up', expires: 'used up', uses: '2 of 2 used', only: null })
  assert.equal(linkSummary(link({ for_user: 'email:ada@example.test' }), 0).only, 'only ada@example.test')
  assert.equal(invitee('sub:ada'), 'only ada')
  assert.equal(invitee('user:u1'), 'only the owner')
  assert.equal(timeLeft(3 * 3_600_000), 'in 3 h')
  assert.equal(timeLeft(10_000), 'in 1 min')
})

test('a link is handed out on the page\'s own origin, and anything but a join link is not', () => {
  assert.equal(linkOnOrigin(link({}).url, 'http://127.0.0.1:7420'), 'http://127.0.0.1:7420/join/0123456789abcdef0123456789abcdef?token=t')
  assert.equal(linkOnOrigin('https://evil.example/other?token=t', 'http://x'), null)
  assert.equal(linkOnOrigin('not a url', 'http://x'), null)
})

test('a use limit is a whole number from 1, or empty for none, else a reason', () => {
  assert.deepEqual(parseMaxUses(' '), { ok: true, value: undefined })
  assert.deepEqual(parseMaxUses('3'), { ok: true, value: 3 })
  for (const bad of ['0', '-1', '1.5', 'many', '99999999999']) assert.equal(parseMaxUses(bad).ok, false, bad)
})

test('audit lines name people the page has seen instead of their seat ids', () => {
  const line = auditLine({ ts: 0, kind: 'role_changed', actor: 'Ada [s1]', subject: 's2', detail: 'reader' }, s => (s === 's2' ? 'Bo' : undefined))
  assert.equal(line, 'Ada [s1] changed a role · Bo · reader')
  assert.equal(auditLine({ ts: 0, kind: 'join', actor: 'Bo [s2]', subject: 's2', detail: '' }, () => 'Bo'), 'Bo [s2] joined')
})

test('"is following you" is said once when someone starts, and once when they stop', () => {
  const first = followersOf(new Map([[2, 1], [3, null], [1, 1]]), 1, new Set())
  assert.deepEqual([...first.now], [2])
  assert.deepEqual(first.started, [2])
  const same = followersOf(new Map([[2, 1]]), 1, first.now)
  assert.deepEqual([same.started, same.stopped], [[], []])
  const gone = followersOf(new Map([[2, 3]]), 1, same.now)
  assert.deepEqual(gone.stopped, [2])
})
