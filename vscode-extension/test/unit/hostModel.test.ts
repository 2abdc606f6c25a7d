import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { linkLabel, roleChoices, roleLabel } from '../../src/hostModel';
import type { Link } from '../../src/protocol';

describe('host pickers', () => {
  it('offer the roles someone does not have, host last and said what it does to you', () => {
    assert.deepEqual(roleChoices('writer'), ['reader', 'host']);
    assert.deepEqual(roleChoices('reader'), ['writer', 'host']);
    assert.deepEqual(roleChoices('host'), ['writer', 'reader']);
    assert.equal(roleLabel('host'), 'Make Host (you become a writer)');
    assert.equal(roleLabel('reader'), 'Make Reader');
  });

  it('show a link with its uses, or that it was revoked', () => {
    const link: Link = { id: 'l1', role: 'writer', url: 'http://x/join/r?token=t', createdAt: 0, expiresAt: 1, uses: 2, revoked: false };
    assert.equal(linkLabel(link), 'writer link l1 (2 uses)');
    assert.equal(linkLabel({ ...link, maxUses: 5 }), 'writer link l1 (2/5 uses)');
    assert.equal(linkLabel({ ...link, revoked: true }), 'writer link l1 (revoked)');
  });
});
