/**
 * The extension's session state as one value, and what the status bar and its quick pick
 * show for it. Pure: `statusBar.ts` only copies these into VS Code objects.
 */
import type { Participant, Status } from './protocol';

/** Where the extension stands: the proxy's own `Status` once it runs. */
export type SessionState =
  | { kind: 'stopped' }
  | { kind: 'starting' }
  | { kind: 'failed'; message: string }
  | { kind: 'running'; status: Status };

/** What the status bar item shows. */
export interface StatusBarView {
  text: string;
  tooltip: string;
  /** Draw it with the warning background (offline, or a failure to fix). */
  warning: boolean;
}

/** True when the proxy is in a room (connected or trying to be). */
export function inSession(state: SessionState): boolean {
  return state.kind === 'running' && state.status.state !== 'idle' && state.status.room !== undefined;
}

/** The people in the room, the local user first. */
export function participantsOf(state: SessionState): Participant[] {
  if (state.kind !== 'running') {
    return [];
  }
  return [...state.status.participants].sort((a, b) => Number(b.you) - Number(a.you) || a.name.localeCompare(b.name));
}

/** Says "1 participant" or "N participants". */
export function countText(n: number): string {
  return n === 1 ? '1 participant' : `${n} participants`;
}

/** The status bar item for a state, and for whom the user follows, if anyone. */
export function statusBarView(state: SessionState, following?: string): StatusBarView {
  switch (state.kind) {
    case 'stopped':
      return { text: '$(live-share) Mesh', tooltip: 'Mesh: not in a session. Click to share a folder or join.', warning: false };
    case 'starting':
      return { text: '$(sync~spin) Mesh', tooltip: 'Mesh: starting mesh-proxy...', warning: false };
    case 'failed':
      return { text: '$(error) Mesh', tooltip: `Mesh: ${state.message}\nClick for actions.`, warning: true };
    case 'running':
      break;
  }
  const s = state.status;
  const n = s.participants.length;
  const where = s.room === undefined ? '' : `\nRoom ${s.room}${s.server === undefined ? '' : ` on ${s.server}`}`;
  const role = s.role === undefined ? '' : `\nYou are ${s.role === 'host' ? 'the host' : `a ${s.role}`}.`;
  switch (s.state) {
    case 'idle':
      return { text: '$(live-share) Mesh', tooltip: 'Mesh: not in a session. Click to share a folder or join.', warning: false };
    case 'connecting':
      return { text: '$(sync~spin) Mesh: connecting', tooltip: `Mesh: connecting...${where}`, warning: false };
    case 'lobby':
      return {
        text: '$(watch) Mesh: waiting for the host',
        tooltip: `Mesh: ${s.lobby ?? 'waiting for the host to let you in'}${where}`,
        warning: false,
      };
    case 'offline':
      return {
        text: `$(debug-disconnect) Mesh: offline`,
        tooltip: `Mesh: offline, reconnecting. Your edits are kept and merge when the connection is back.${where}`,
        warning: true,
      };
    case 'connected': {
      const icon = s.role === 'reader' ? '$(lock)' : '$(broadcast)';
      const follow = following === undefined ? '' : ` $(eye) ${following}`;
      const host = s.role === 'host' ? ' · host' : '';
      const waiting = (s.joinRequests ?? []).length;
      const asking = waiting === 0 ? '' : ` $(person-add) ${waiting}`;
      return {
        text: `${icon} Mesh (${n})${host}${asking}${follow}`,
        tooltip: `Mesh: connected, ${countText(n)}.${where}${role}${following === undefined ? '' : `\nFollowing ${following}.`}`,
        warning: false,
      };
    }
  }
}

/** One entry of the status bar's quick pick. */
export interface Action {
  label: string;
  command: string;
  description?: string;
}

/** The actions the status bar offers in a state. */
export function actionsFor(state: SessionState, following?: string): Action[] {
  if (state.kind === 'failed') {
    return [
      { label: '$(refresh) Retry', command: 'mesh.retry' },
      { label: '$(gear) Open Settings', command: 'mesh.openSettings' },
      { label: '$(output) Show Log', command: 'mesh.showLog' },
    ];
  }
  if (!inSession(state)) {
    return [
      { label: '$(live-share) Share Folder', command: 'mesh.share', description: 'start a session for this folder' },
      { label: '$(plug) Join Session', command: 'mesh.join', description: 'paste a join link' },
      { label: '$(gear) Open Settings', command: 'mesh.openSettings' },
    ];
  }
  const actions: Action[] = [
    { label: '$(copy) Copy Join Link', command: 'mesh.copyLink' },
    { label: '$(comment-discussion) Open Chat', command: 'mesh.openChat' },
    following === undefined
      ? { label: '$(eye) Follow Participant', command: 'mesh.follow' }
      : { label: '$(eye-closed) Stop Following', command: 'mesh.stopFollowing', description: following },
    { label: '$(play) Run', command: 'mesh.run' },
    { label: '$(debug-alt) Debug', command: 'mesh.debug' },
    { label: '$(debug-disconnect) Leave', command: 'mesh.leave' },
  ];
  if (state.kind === 'running' && state.status.role === 'host') {
    const waiting = (state.status.joinRequests ?? []).length;
    actions.splice(
      1,
      0,
      ...(waiting > 0 ? [{ label: '$(person-add) Admit or Refuse', command: 'mesh.admit', description: `${waiting} waiting` }] : []),
      { label: '$(organization) Participants and Roles', command: 'mesh.manageParticipants' },
      { label: '$(link) Manage Links', command: 'mesh.manageLinks' },
      {
        label: state.status.approval === true ? '$(unlock) Stop Requiring Approval' : '$(shield) Require Approval to Join',
        command: 'mesh.toggleApproval',
      },
      { label: '$(history) Show Audit Trail', command: 'mesh.showAudit' },
    );
  }
  return actions;
}
