import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { classify, errorText, fixesFor } from '../../src/errors';
import { checkProxy, proxyEnvironment, proxyFileName, proxyProblem, resolveProxy } from '../../src/proxyBinary';

describe('proxy environment', () => {
  it('passes the server and the name as MESH_SERVER and MESH_NAME', () => {
    assert.deepEqual(proxyEnvironment({ serverUrl: ' http://h:1 ', displayName: 'Grace' }), { MESH_SERVER: 'http://h:1', MESH_NAME: 'Grace' });
  });

  it('leaves MESH_NAME out when no name is set', () => {
    assert.deepEqual(proxyEnvironment({ serverUrl: 'http://h:1', displayName: '  ' }), { MESH_SERVER: 'http://h:1' });
  });
});

describe('resolveProxy', () => {
  const ext = '/ext';
  it('prefers the setting, expanding ~/', () => {
    assert.deepEqual(resolveProxy('~/bin/mesh-proxy', ext, { home: '/home/u', exists: () => true }), {
      command: path.join('/home/u', 'bin/mesh-proxy'),
      source: 'setting',
    });
  });

  it('uses the bundled binary when there is one', () => {
    assert.deepEqual(resolveProxy('', ext, { exists: (p) => p === path.join(ext, 'bin', 'mesh-proxy'), platform: 'linux' }), {
      command: path.join(ext, 'bin', 'mesh-proxy'),
      source: 'bundled',
    });
  });

  it('falls back to PATH', () => {
    assert.deepEqual(resolveProxy(' ', ext, { exists: () => false, platform: 'linux' }), { command: 'mesh-proxy', source: 'path' });
    assert.equal(proxyFileName('win32'), 'mesh-proxy.exe');
  });
});

describe('checkProxy', () => {
  it('reports a missing binary with what to do', async () => {
    await assert.rejects(checkProxy({ command: '/nonexistent/mesh-proxy', source: 'setting' }), (e: Error) => {
      assert.match(e.message, /mesh-proxy was not found at "\/nonexistent\/mesh-proxy" \(the mesh.proxyPath setting\)/);
      assert.match(e.message, /set mesh.proxyPath/);
      return true;
    });
  });

  it('returns the first line of --version', async () => {
    // Node.js answers --version like the proxy does.
    assert.match(await checkProxy({ command: process.execPath, source: 'setting' }), /^v\d+\./);
  });

  it('describes a broken binary', () => {
    assert.match(proxyProblem({ command: 'mesh-proxy', source: 'path' }, { code: 1, message: 'exit 1' }, 'boom\nmore'), /on PATH did not answer --version \(boom\)/);
    assert.match(proxyProblem({ command: '/b', source: 'bundled' }, { code: 'EACCES', message: '' }), /bundled .* is not executable/);
  });
});

describe('errors', () => {
  it('offers the fixes that fit the problem', () => {
    assert.deepEqual(fixesFor(classify('mesh-proxy was not found on PATH.')), ['Open Settings', 'Retry', 'Show Log']);
    assert.deepEqual(fixesFor(classify('cannot reach the server at http://x: connection refused')), ['Retry', 'Open Settings']);
    assert.deepEqual(fixesFor(classify('not a mesh link: "x" is not a URL')), ['Enter Another Link']);
    assert.deepEqual(fixesFor(classify('something else')), ['Retry', 'Show Log']);
  });

  it('reads the message of anything thrown', () => {
    assert.equal(errorText(new Error('a')), 'a');
    assert.equal(errorText({ message: 'b', code: -32603 }), 'b');
    assert.equal(errorText('c'), 'c');
  });
});
