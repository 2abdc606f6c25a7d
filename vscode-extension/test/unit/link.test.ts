import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { looksLikeJoinLink, parseJoinLink, vscodeJoinUri } from '../../src/link';

const ROOM = '0123456789abcdef0123456789abcdef';
const LINK = `http://127.0.0.1:7420/join/${ROOM}?token=abc.def-ghi`;

function ok(input: string) {
  const r = parseJoinLink(input);
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.value;
}

function err(input: string): string {
  const r = parseJoinLink(input);
  assert.ok(!r.ok, `expected an error for ${input}`);
  return r.error;
}

describe('parseJoinLink', () => {
  it('takes a server link apart', () => {
    assert.deepEqual(ok(LINK), { link: LINK, server: 'http://127.0.0.1:7420', room: ROOM, token: 'abc.def-ghi' });
  });

  it('strips what sticks to a pasted link', () => {
    assert.equal(ok(`  <${LINK}>. `).link, LINK);
    assert.equal(ok(`"${LINK}"`).link, LINK);
    assert.equal(ok(`${LINK}\n`).link, LINK);
  });

  it('keeps a base path of a server behind a reverse proxy', () => {
    const v = ok(`https://example.org/mesh/join/${ROOM}?token=t`);
    assert.equal(v.server, 'https://example.org/mesh');
    assert.equal(v.link, `https://example.org/mesh/join/${ROOM}?token=t`);
  });

  it('unwraps a vscode:// link', () => {
    assert.equal(ok(vscodeJoinUri('mesh.mesh-vscode', LINK)).link, LINK);
    assert.equal(ok(vscodeJoinUri('mesh.mesh-vscode', LINK, 'code-oss')).link, LINK);
  });

  it('says what is wrong with a bad link', () => {
    assert.match(err(''), /Paste the join link/);
    assert.match(err('hello world'), /^not a mesh link: .*not a URL/);
    assert.match(err('ftp://x/join/' + ROOM + '?token=t'), /not a mesh link: expected an http\(s\) link/);
    assert.match(err('http://x/rooms/' + ROOM + '?token=t'), /path ending in \/join\/ROOM/);
    assert.match(err('http://x/join/' + ROOM + '/extra?token=t'), /path ending in \/join\/ROOM/);
    assert.match(err('http://x/join/NOTAROOM?token=t'), /is not a room id/);
    assert.match(err(`http://x/join/${ROOM}`), /has no token/);
    assert.match(err(`http://x/join/${ROOM}?token=`), /has no token/);
  });

  it('recognises links on the clipboard', () => {
    assert.equal(looksLikeJoinLink(LINK), true);
    assert.equal(looksLikeJoinLink('some text'), false);
    assert.equal(looksLikeJoinLink(LINK + 'x'.repeat(3000)), false);
  });
});
