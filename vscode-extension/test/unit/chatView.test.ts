import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { chatPageHtml, entryHtml, escapeHtml, makeNonce, parseFromWebview } from '../../src/chatView';

describe('chat view', () => {
  it('escapes HTML', () => {
    assert.equal(escapeHtml(`<img src=x onerror="alert('1')"> & co`), '&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt; &amp; co');
    assert.equal(escapeHtml('plain 🎉'), 'plain 🎉');
  });

  it('renders an entry with every room-supplied text escaped', () => {
    const html = entryHtml({ id: '"x', author: '<b>Ada</b>', connId: 2, text: '<script>alert(1)</script>\nline 2', ts: 0 }, false);
    assert.ok(!html.includes('<script>'));
    assert.ok(!html.includes('<b>'));
    assert.ok(html.includes('&lt;b&gt;Ada&lt;/b&gt;'));
    assert.ok(html.includes('data-id="&quot;x"'));
    assert.ok(html.includes('line 2'));
    assert.ok(entryHtml({ id: '1', author: 'me', connId: 1, text: 'hi', ts: 0 }, true).includes('class="entry mine"'));
  });

  it('builds a page whose only script carries the nonce', () => {
    const nonce = makeNonce();
    const html = chatPageHtml({ cspSource: 'vscode-webview://abc', nonce, room: '<room>' });
    assert.match(html, new RegExp(`script-src 'nonce-${nonce.replace(/[+/]/g, '\\$&')}'`));
    assert.match(html, /default-src 'none'/);
    const scripts = [...html.matchAll(/<script([^>]*)>/g)];
    assert.equal(scripts.length, 1);
    assert.equal(scripts[0]?.[1], ` nonce="${nonce}"`);
    assert.ok(html.includes('Room &lt;room&gt;'));
  });

  it('makes fresh nonces', () => {
    const a = makeNonce();
    assert.notEqual(a, makeNonce());
    assert.ok(Buffer.from(a, 'base64').length === 16);
  });

  it('accepts only well-formed messages from the page', () => {
    assert.deepEqual(parseFromWebview({ type: 'send', text: 'hi' }), { type: 'send', text: 'hi' });
    assert.deepEqual(parseFromWebview({ type: 'ready' }), { type: 'ready' });
    assert.equal(parseFromWebview({ type: 'send', text: '   ' }), undefined);
    assert.equal(parseFromWebview({ type: 'send', text: 42 }), undefined);
    assert.equal(parseFromWebview('send'), undefined);
    assert.equal(parseFromWebview(null), undefined);
  });
});
