// The mirror check: src/protocol.ts must name exactly the `mesh/*` methods of
// docs/lsp-extensions.md, each as the same kind (request or notification) in the same
// direction. When the contract changes, this fails until the mirror follows.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { ALL_DESCRIPTORS } from '../../src/protocol';

/** Finds docs/lsp-extensions.md from the working directory upwards. */
function contractPath(): string {
  let dir = process.cwd();
  for (;;) {
    const candidate = path.join(dir, 'docs', 'lsp-extensions.md');
    if (existsSync(candidate)) {
      return candidate;
    }
    const parent = path.dirname(dir);
    assert.notEqual(parent, dir, 'docs/lsp-extensions.md not found above the working directory');
    dir = parent;
  }
}

const doc = readFileSync(contractPath(), 'utf8');

/** Every backticked `mesh/name` in the document. */
function namesInDoc(): Set<string> {
  return new Set([...doc.matchAll(/`(mesh\/[A-Za-z]+)`/g)].map((m) => m[1] ?? ''));
}

/** "request editor→proxy mesh/share" for every row of the four method tables. */
function tableRows(): Set<string> {
  const rows = new Set<string>();
  let section: string | undefined;
  for (const line of doc.split('\n')) {
    const heading = /^##\s+(Requests|Notifications):\s+(editor|proxy)\s+→\s+(editor|proxy)/.exec(line);
    if (heading !== null) {
      const kind = heading[1] === 'Requests' ? 'request' : 'notification';
      section = `${kind} ${heading[2]}→${heading[3]}`;
      continue;
    }
    if (line.startsWith('#')) {
      section = undefined;
      continue;
    }
    const row = /^\|\s*`(mesh\/[A-Za-z]+)`\s*\|/.exec(line);
    if (row !== null && section !== undefined) {
      rows.add(`${section} ${row[1]}`);
    }
  }
  return rows;
}

describe('protocol.ts mirrors docs/lsp-extensions.md', () => {
  const mirrored = new Set(ALL_DESCRIPTORS.map((d) => d.method));

  it('has every method the contract names', () => {
    const missing = [...namesInDoc()].filter((m) => !mirrored.has(m));
    assert.deepEqual(missing, [], `protocol.ts lacks ${missing.join(', ')}`);
  });

  it('has no method the contract does not name', () => {
    const named = namesInDoc();
    const extra = [...mirrored].filter((m) => !named.has(m));
    assert.deepEqual(extra, [], `protocol.ts has extra ${extra.join(', ')}`);
  });

  it('gives each method the kind and direction of its table', () => {
    const inDoc = tableRows();
    assert.ok(inDoc.size >= 16, `expected the four method tables, found ${inDoc.size} rows`);
    const inMirror = new Set(ALL_DESCRIPTORS.map((d) => `${d.kind} ${d.direction} ${d.method}`));
    assert.deepEqual([...inMirror].sort(), [...inDoc].sort());
  });

  it('names each method once per direction and kind', () => {
    const keys = ALL_DESCRIPTORS.map((d) => `${d.kind} ${d.direction} ${d.method}`);
    assert.equal(new Set(keys).size, keys.length);
  });
});
