import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RoomCredentials, withoutToken, type TokenStorage } from '../../src/net/credentials.js'

function memory (): TokenStorage & { items: Map<string, string> } {
  const items = new Map<string, string>()
  return {
    items,
    getItem: (k) => items.get(k) ?? null,
    setItem: (k, v) => { items.set(k, v) },
    removeItem: (k) => { items.delete(k) },
  }
}

const room = '0123456789abcdef0123456789abcdef'

test('the link token from the URL is kept for reloads, and a reload without it still connects', () => {
  const store = memory()
  assert.equal(new RoomCredentials(store, room).adopt('link-1'), true)
  const reloaded = new RoomCredentials(store, room)
  assert.equal(reloaded.adopt(null), true)
  assert.deepEqual(reloaded.connectToken(), { token: 'link-1', seat: false })
})

test('a page with no token at all cannot connect', () => {
  assert.equal(new RoomCredentials(memory(), room).adopt(null), false)
})

test('once the server gave a seat, connections show the seat token, not the link', () => {
  const c = new RoomCredentials(memory(), room)
  c.adopt('link-1')
  c.keepSeat({ id: 's1', token: 'seat-1' })
  assert.deepEqual(c.connectToken(), { token: 'seat-1', seat: true })
  assert.equal(c.restToken(), 'seat-1')
  c.forgetSeat()
  assert.deepEqual(c.connectToken(), { token: 'link-1', seat: false })
})

test('opening another link of the room forgets the seat of the old one', () => {
  const store = memory()
  const c = new RoomCredentials(store, room)
  c.adopt('reader-link')
  c.keepSeat({ id: 's1', token: 'seat-1' })
  c.adopt('reader-link')
  assert.equal(c.seat()?.id, 's1', 'the same link keeps its seat')
  c.adopt('writer-link')
  assert.equal(c.seat(), null)
  assert.deepEqual(c.connectToken(), { token: 'writer-link', seat: false })
})

test('a kept seat of another shape is ignored, never trusted', () => {
  const store = memory()
  store.setItem(`mesh.seat:${room}`, '{"id": 5}')
  assert.equal(new RoomCredentials(store, room).seat(), null)
  store.setItem(`mesh.seat:${room}`, 'not json')
  assert.equal(new RoomCredentials(store, room).seat(), null)
})

test('the address bar keeps every parameter but the token', () => {
  assert.equal(withoutToken('?token=abc'), '')
  assert.equal(withoutToken('?x=1&token=abc&y=2'), '?x=1&y=2')
  assert.equal(withoutToken(''), '')
})
