import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Backoff, FATAL_CLOSE_CODES, RETRY_BASE_MS, RETRY_MAX_MS, STABLE_CONNECTION_MS } from '../../src/net/backoff.js'

test('waits double up to the cap, each between half and all of its step', () => {
  const low = new Backoff(() => 0)
  const high = new Backoff(() => 1)
  let step = RETRY_BASE_MS
  for (let i = 0; i < 12; i++) {
    assert.equal(low.next(), step / 2)
    assert.equal(high.next(), step)
    step = Math.min(RETRY_MAX_MS, step * 2)
  }
  assert.equal(high.next(), RETRY_MAX_MS)
})

test('only a connection that lasted resets the backoff', () => {
  const b = new Backoff(() => 1)
  b.next(); b.next(); b.next()
  b.closedAfter(STABLE_CONNECTION_MS - 1)
  assert.equal(b.next(), RETRY_BASE_MS * 8, 'a connection dropped at once keeps backing off')
  b.closedAfter(STABLE_CONNECTION_MS)
  assert.equal(b.next(), RETRY_BASE_MS)
})

test('refusals a retry cannot change are fatal; going away is not', () => {
  for (const code of [4401, 4403, 4404, 4426]) assert.ok(FATAL_CLOSE_CODES.has(code))
  // 1012 (service restart) is what a draining server closes with: reconnect, elsewhere.
  for (const code of [1001, 1006, 1011, 1012, 4400, 4429, 4503]) assert.ok(!FATAL_CLOSE_CODES.has(code))
})
