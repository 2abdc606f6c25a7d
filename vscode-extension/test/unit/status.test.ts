import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Participant, Status } from '../../src/protocol';
import { type SessionState, actionsFor, countText, inSession, participantsOf, statusBarView } from '../../src/status';

const me: Participant = { connId: 1, name: 'Grace', color: '#3cb44b', role: 'writer', client: 'vscode', you: true };
const ada: Participant = { connId: 2, name: 'Ada', color: '#e6194b', role: 'host', client: 'yjs', you: false };
const bob: Participant = { connId: 3, name: 'Bob', color: '#4363d8', role: 'reader', client: 'neovim', you: false };

function running(status: Partial<Status>): SessionState {
  return { kind: 'running', status: { state: 'connected', room: 'r1', server: 'http://s', participants: [me, ada], ...status } };
}

describe('status bar', () => {
  it('shows the head count when connected', () => {
    const v = statusBarView(running({ role: 'writer' }));
    assert.equal(v.text, '$(broadcast) Mesh (2)');
    assert.match(v.tooltip, /connected, 2 participants/);
    assert.match(v.tooltip, /Room r1 on http:\/\/s/);
    assert.match(v.tooltip, /You are a writer/);
    assert.equal(v.warning, false);
  });

  it('shows a lock for readers and whom one follows', () => {
    assert.equal(statusBarView(running({ role: 'reader' }), 'Ada').text, '$(lock) Mesh (2) $(eye) Ada');
    assert.match(statusBarView(running({ role: 'host' })).tooltip, /You are the host/);
  });

  it('warns when offline or failed', () => {
    const off = statusBarView(running({ state: 'offline' }));
    assert.equal(off.text, '$(debug-disconnect) Mesh: offline');
    assert.equal(off.warning, true);
    const failed = statusBarView({ kind: 'failed', message: 'mesh-proxy was not found on PATH.' });
    assert.equal(failed.text, '$(error) Mesh');
    assert.match(failed.tooltip, /not found on PATH/);
    assert.equal(failed.warning, true);
  });

  it('is quiet when idle or stopped', () => {
    assert.equal(statusBarView({ kind: 'stopped' }).text, '$(live-share) Mesh');
    assert.equal(statusBarView(running({ state: 'idle', room: undefined })).text, '$(live-share) Mesh');
    assert.equal(statusBarView({ kind: 'starting' }).text, '$(sync~spin) Mesh');
    assert.equal(statusBarView(running({ state: 'connecting' })).text, '$(sync~spin) Mesh: connecting');
  });

  it('shows the lobby wait, the host role and who waits to join', () => {
    const lobby = statusBarView(running({ state: 'lobby', lobby: 'waiting for the host to let you in' }));
    assert.equal(lobby.text, '$(watch) Mesh: waiting for the host');
    assert.match(lobby.tooltip, /waiting for the host to let you in/);
    const host = statusBarView(running({ role: 'host', joinRequests: [{ seat: 's9', name: 'Cy', client: 'neovim' }] }));
    assert.equal(host.text, '$(broadcast) Mesh (2) · host $(person-add) 1');
    const actions = actionsFor(running({ role: 'host', joinRequests: [{ seat: 's9', name: 'Cy', client: 'neovim' }] })).map((a) => a.command);
    for (const c of ['mesh.admit', 'mesh.manageParticipants', 'mesh.manageLinks', 'mesh.toggleApproval', 'mesh.showAudit']) {
      assert.ok(actions.includes(c), c);
    }
    assert.ok(!actionsFor(running({ role: 'writer' })).some((a) => a.command === 'mesh.manageLinks'), 'host actions for hosts only');
  });

  it('counts in words', () => {
    assert.equal(countText(1), '1 participant');
    assert.equal(countText(0), '0 participants');
  });
});

describe('session state', () => {
  it('knows when a session is on', () => {
    assert.equal(inSession({ kind: 'stopped' }), false);
    assert.equal(inSession(running({})), true);
    assert.equal(inSession(running({ state: 'offline' })), true);
    assert.equal(inSession(running({ state: 'idle', room: undefined })), false);
  });

  it('lists the local user first, then by name', () => {
    assert.deepEqual(participantsOf(running({ participants: [bob, ada, me] })).map((p) => p.name), ['Grace', 'Ada', 'Bob']);
    assert.deepEqual(participantsOf({ kind: 'starting' }), []);
  });

  it('offers the actions that fit', () => {
    const commands = (s: SessionState, f?: string) => actionsFor(s, f).map((a) => a.command);
    assert.deepEqual(commands({ kind: 'stopped' }), ['mesh.share', 'mesh.join', 'mesh.openSettings']);
    assert.deepEqual(commands({ kind: 'failed', message: 'x' }), ['mesh.retry', 'mesh.openSettings', 'mesh.showLog']);
    assert.ok(commands(running({})).includes('mesh.follow'));
    assert.ok(commands(running({}), 'Ada').includes('mesh.stopFollowing'));
    assert.ok(commands(running({})).includes('mesh.leave'));
  });
});
