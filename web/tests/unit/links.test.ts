import { test } from 'node:test'
import assert from 'node:assert/strict'
import { joinPathOf } from '../../src/room/links.js'

const origin = 'http://127.0.0.1:7420'
const room = '0123456789abcdef0123456789abcdef'

test('a join link of this server opens here', () => {
  assert.deepEqual(joinPathOf(` ${origin}/join/${room}?token=abc `, origin), { path: `/join/${room}?token=abc` })
})

test('a link to another server is refused, so its token stays there', () => {
  const r = joinPathOf(`https://mesh.example.com/join/${room}?token=abc`, origin)
  assert.ok('problem' in r && r.problem.includes('another server'))
})

test('links without a token or a well-formed room are refused with a reason', () => {
  for (const bad of [`${origin}/join/${room}`, `${origin}/join/nope?token=a`, `${origin}/api/sessions`, 'http://[bad']) {
    const r = joinPathOf(bad, origin)
    assert.ok('problem' in r, bad)
  }
})
