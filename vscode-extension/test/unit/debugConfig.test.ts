import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import {
  type ActiveFile,
  DEBUG_LANGUAGES,
  DEBUG_NAME,
  DEBUG_TYPE,
  JOIN_NAME,
  NO_FILE,
  adapterArgs,
  adapterFolder,
  checkConfiguration,
  configurationFor,
  joinConfiguration,
  joinOffer,
  meshLanguage,
  resolveConfiguration,
} from '../../src/debugConfig';

const py: ActiveFile = { scheme: 'file', fsPath: '/home/ada/proj/src/app.py', languageId: 'python' };

describe('configurationFor ("Mesh: Debug")', () => {
  it('debugs the active file, naming its language when mesh debugs it', () => {
    assert.deepEqual(configurationFor(py), {
      ok: true,
      config: { type: 'mesh', request: 'launch', name: 'Mesh: Debug', program: '/home/ada/proj/src/app.py', language: 'python' },
    });
    const header = configurationFor({ scheme: 'file', fsPath: '/p/vec.h', languageId: 'cpp' });
    assert.ok(header.ok);
    assert.equal(header.config.language, 'cpp');
  });

  it('leaves the language to the server for other language ids', () => {
    const r = configurationFor({ scheme: 'file', fsPath: '/p/notes.txt', languageId: 'plaintext' });
    assert.ok(r.ok);
    assert.equal('language' in r.config, false);
  });

  it('refuses when there is no file on disk to debug', () => {
    assert.deepEqual(configurationFor(undefined), { ok: false, message: NO_FILE });
    assert.deepEqual(configurationFor({ scheme: 'untitled', fsPath: 'Untitled-1', languageId: 'python' }), { ok: false, message: NO_FILE });
  });
});

describe('resolveConfiguration (before variables are substituted)', () => {
  it('fills an empty configuration (F5 without a launch.json) from the active file', () => {
    assert.deepEqual(resolveConfiguration({}, py), configurationFor(py));
    assert.deepEqual(resolveConfiguration({}, undefined), { ok: false, message: NO_FILE });
  });

  it('gives a launch.json entry without program ${file}, and keeps what it has', () => {
    assert.deepEqual(resolveConfiguration({ type: 'mesh', request: 'launch', name: 'mine', language: 'c', extra: 1 }, py), {
      ok: true,
      config: { type: 'mesh', request: 'launch', name: 'mine', program: '${file}', language: 'c', extra: 1 },
    });
    assert.deepEqual(resolveConfiguration({ type: 'mesh', request: 'launch', name: 'x', program: '' }, undefined), {
      ok: true,
      config: { type: 'mesh', request: 'launch', name: 'x', program: '${file}' },
    });
  });

  it('does not touch a given program', () => {
    const config = { type: 'mesh', request: 'launch', name: 'x', program: '${workspaceFolder}/main.py' };
    assert.deepEqual(resolveConfiguration(config, py), { ok: true, config });
  });
});

describe('checkConfiguration (after substitution)', () => {
  it('makes a relative program absolute against the workspace folder', () => {
    const r = checkConfiguration({ type: 'mesh', request: 'launch', name: 'x', program: 'src/app.py' }, '/home/ada/proj');
    assert.ok(r.ok);
    assert.equal(r.config.program, path.resolve('/home/ada/proj', 'src/app.py'));
  });

  it('passes an absolute program as it is', () => {
    const config = { type: 'mesh', request: 'launch', name: 'x', program: '/home/ada/proj/main.c', language: 'c' };
    assert.deepEqual(checkConfiguration(config, undefined), { ok: true, config });
  });

  it('says what is wrong with program, language and request', () => {
    const base = { type: 'mesh', request: 'launch', name: 'x' };
    for (const [config, words] of [
      [{ ...base }, '"program" must name the file to debug'],
      [{ ...base, program: 42 }, 'it is 42'],
      [{ ...base, program: '  ' }, '"program" must name'],
      [{ ...base, program: '${file}' }, NO_FILE],
      [{ ...base, program: '${command:pick}' }, '"program" must name'],
      [{ ...base, program: '/p/a.py', language: 3 }, '"language" must be a language id'],
      [{ ...base, request: 'attach', program: 42 }, 'it is 42'],
      [{ ...base, request: 'restart', program: '/p/a.py' }, '"request": "launch" or "attach", not "restart"'],
    ] as const) {
      const r = checkConfiguration(config, '/p');
      assert.equal(r.ok, false, JSON.stringify(config));
      assert.ok(!r.ok && r.message.includes(words), `${JSON.stringify(config)}: ${!r.ok ? r.message : ''}`);
    }
  });
});

describe('joining a debug session someone started', () => {
  const started = { path: 'src/app.py', byName: 'Grace', you: false };

  it('offers to join when no mesh session is going here', () => {
    assert.equal(joinOffer(started, false), 'Grace started debugging src/app.py');
  });

  it('offers nothing for its own session or while one is going', () => {
    assert.equal(joinOffer({ ...started, you: true }, false), undefined);
    assert.equal(joinOffer(started, true), undefined);
  });

  it('joins with an attach that names the local file when there is one', () => {
    assert.deepEqual(joinConfiguration('/home/ada/proj/src/app.py'), {
      type: DEBUG_TYPE,
      request: 'attach',
      name: JOIN_NAME,
      program: '/home/ada/proj/src/app.py',
    });
    assert.deepEqual(joinConfiguration(undefined), { type: DEBUG_TYPE, request: 'attach', name: JOIN_NAME });
  });

  it('lets an attach through resolution with or without a program', () => {
    const bare = joinConfiguration(undefined);
    assert.deepEqual(resolveConfiguration(bare, py), { ok: true, config: bare });
    assert.deepEqual(checkConfiguration(bare, '/p'), { ok: true, config: bare });
    const r = checkConfiguration({ ...bare, program: 'src/app.py' }, '/home/ada/proj');
    assert.deepEqual(r, { ok: true, config: { ...bare, program: '/home/ada/proj/src/app.py' } });
  });
});

describe('the adapter command line', () => {
  it('serves the innermost workspace folder that holds the program', () => {
    const folders = ['/home/ada', '/home/ada/proj', '/home/ada/proj-other'];
    assert.equal(adapterFolder('/home/ada/proj/src/app.py', '/elsewhere', folders), '/home/ada/proj');
    assert.equal(adapterFolder('/home/ada/proj-other/x.py', undefined, folders), '/home/ada/proj-other');
    assert.equal(adapterFolder('/home/ada/proj', undefined, folders), '/home/ada/proj', 'the folder itself');
  });

  it('falls back to the session folder, the first folder, then the program directory', () => {
    assert.equal(adapterFolder('/tmp/a.py', '/s', ['/w']), '/s');
    assert.equal(adapterFolder('/tmp/a.py', undefined, ['/w']), '/w');
    assert.equal(adapterFolder('/tmp/x/a.py', undefined, []), '/tmp/x');
    assert.equal(adapterFolder(undefined, undefined, []), undefined);
    assert.equal(adapterFolder('relative.py', undefined, []), undefined);
  });

  it('is `dap --folder DIR`', () => {
    assert.deepEqual(adapterArgs('/home/ada/proj'), ['dap', '--folder', '/home/ada/proj']);
    assert.deepEqual(adapterArgs(undefined), ['dap']);
  });
});

describe('package.json agrees with the code', () => {
  interface Debugger {
    type: string;
    languages: string[];
    configurationAttributes: {
      launch: { required: string[]; properties: Record<string, { default?: string }> };
      attach?: { required?: string[]; properties: Record<string, unknown> };
    };
    initialConfigurations: Record<string, unknown>[];
  }
  interface Manifest {
    activationEvents: string[];
    contributes: { debuggers: Debugger[]; breakpoints: { language: string }[]; commands: { command: string }[] };
  }
  const manifest = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as Manifest;
  const debuggers = manifest.contributes.debuggers;

  it('contributes the mesh debug type for the languages mesh debugs, with breakpoints there', () => {
    assert.equal(debuggers.length, 1);
    const d = debuggers[0];
    assert.ok(d !== undefined);
    assert.equal(d.type, DEBUG_TYPE);
    const languages = Object.keys(DEBUG_LANGUAGES).sort();
    assert.deepEqual([...d.languages].sort(), languages);
    assert.deepEqual(manifest.contributes.breakpoints.map((b) => b.language).sort(), languages);
    assert.ok(manifest.activationEvents.includes(`onDebugResolve:${DEBUG_TYPE}`));
    assert.ok(manifest.contributes.commands.some((c) => c.command === 'mesh.debug'));
  });

  it('offers an initial configuration that resolves, with program defaulting to ${file}', () => {
    const d = debuggers[0];
    assert.ok(d !== undefined);
    assert.deepEqual(d.configurationAttributes.launch.required, ['program']);
    assert.equal(d.configurationAttributes.launch.properties.program?.default, '${file}');
    assert.deepEqual(d.initialConfigurations, [{ type: DEBUG_TYPE, request: 'launch', name: DEBUG_NAME, program: '${file}' }]);
  });

  it('declares the attach that "Join" starts, with nothing required', () => {
    const attach = debuggers[0]?.configurationAttributes.attach;
    assert.ok(attach !== undefined, 'no attach configuration');
    assert.equal(attach.required, undefined);
    assert.deepEqual(Object.keys(attach.properties).sort(), ['language', 'program']);
    const join = joinConfiguration('/home/ada/proj/src/app.py');
    for (const key of Object.keys(join).filter((k) => !['type', 'request', 'name'].includes(k))) {
      assert.ok(key in attach.properties, `"Join" sets ${key}, which the attach configuration does not declare`);
    }
  });

  it('maps VS Code language ids to mesh languages', () => {
    assert.equal(meshLanguage('python'), 'python');
    assert.equal(meshLanguage('cpp'), 'cpp');
    assert.equal(meshLanguage('toString'), undefined, 'not an inherited property');
    assert.equal(meshLanguage('rust'), undefined);
  });
});
