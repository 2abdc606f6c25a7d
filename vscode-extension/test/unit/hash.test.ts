import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';

import { sha256Hex } from '../../src/hash';

describe('sha256Hex (mesh/documentHash)', () => {
  it('hashes the text as UTF-8, lower-case hex', () => {
    assert.equal(sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('hashes multibyte text by its UTF-8 bytes, not UTF-16 units', () => {
    const text = 'héllo 🎉\r\n';
    assert.equal(sha256Hex(text), createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex'));
    assert.notEqual(sha256Hex(text), createHash('sha256').update(Buffer.from(text, 'utf16le')).digest('hex'));
  });
});
