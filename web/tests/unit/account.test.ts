import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseMe, signInUrl } from '../../src/net/account.js'

test('who is signed in reads from /auth/me, and anything unexpected reads as no accounts', () => {
  assert.deepEqual(parseMe({ accounts: false }), { accounts: false, user: null })
  assert.deepEqual(parseMe({ accounts: true, user: { id: 'u1', name: 'Ada Lovelace', email: 'ada@example.test', subject: 'ada' } }),
    { accounts: true, user: { id: 'u1', name: 'Ada Lovelace', email: 'ada@example.test' } })
  assert.deepEqual(parseMe({ accounts: true }), { accounts: true, user: null })
  assert.deepEqual(parseMe({ accounts: true, user: { id: 7 } }), { accounts: true, user: null })
  assert.deepEqual(parseMe(null), { accounts: false, user: null })
  assert.equal(parseMe({ accounts: true, user: { id: 'u', name: 'x'.repeat(1000) } }).user?.name.length, 254)
})

test('sign-in comes back to the page it started from, on this server', () => {
  assert.equal(signInUrl('/join/abc?token=t'), '/auth/login?return_to=%2Fjoin%2Fabc%3Ftoken%3Dt')
})
