/**
 * Host control (decision 011): join requests as notifications with Admit and Refuse, the
 * participants' roles and kick (quick picks and the Participants view's context menu), the
 * approval toggle, links (copy, revoke, create) and the audit trail; and what the proxy says
 * about presence, the lobby and the end of a session. The proxy does the work; every sentence
 * about presence comes ready-made from it, so every editor says the same.
 */
import * as vscode from 'vscode';

import type { Ctx } from './context';
import { errorText } from './errors';
import { linkLabel, roleChoices, roleLabel } from './hostModel';
import { EditorRequests, type JoinRequest, type Link, type Participant, ProxyNotifications, type Role } from './protocol';

/** How long a join or leave stays in the status bar: a glance, not a dialog. */
const PRESENCE_STATUS_MS = 5000;

export class HostControl {
  constructor(private readonly ctx: Ctx) {
    ctx.on(ProxyNotifications.presence, (p) => {
      if (p.kind === 'joined' || p.kind === 'left') {
        vscode.window.setStatusBarMessage(`$(person) Mesh: ${p.message}`, PRESENCE_STATUS_MS);
      } else if (p.you && p.role === 'reader') {
        void vscode.window.showWarningMessage(`Mesh: ${p.message}`);
      } else {
        void vscode.window.showInformationMessage(`Mesh: ${p.message}`);
      }
    });
    ctx.on(ProxyNotifications.lobby, (p) => {
      void vscode.window.showInformationMessage(`Mesh: ${p.message}`);
    });
    ctx.on(ProxyNotifications.joinRequest, (req) => void this.ask(req));
    ctx.on(ProxyNotifications.joinRequestClosed, (p) => {
      const by = p.by === undefined ? '' : ` by ${p.by}`;
      vscode.window.setStatusBarMessage(`Mesh: ${p.name} was ${p.admitted ? 'let in' : 'turned away'}${by}`, PRESENCE_STATUS_MS);
    });
    ctx.on(ProxyNotifications.ended, (p) => {
      void vscode.window.showErrorMessage(`Mesh: ${p.message}`);
    });
  }

  /** A join request: Admit or Refuse, from the notification itself. */
  private async ask(req: JoinRequest): Promise<void> {
    const who = req.verified === true ? `${req.name} (signed in, ${req.client})` : `${req.name} (name not verified, ${req.client})`;
    const pick = await vscode.window.showInformationMessage(`Mesh: ${who} asks to join.`, 'Admit', 'Refuse');
    if (pick === 'Admit') {
      await this.act(() => this.ctx.request(EditorRequests.admit, { seat: req.seat }), `let ${req.name} in`);
    } else if (pick === 'Refuse') {
      await this.act(() => this.ctx.request(EditorRequests.refuse, { seat: req.seat }), `turned ${req.name} away`);
    }
  }

  /** Runs a host request; says it worked or why not. */
  private async act(run: () => Promise<unknown>, done: string): Promise<boolean> {
    try {
      await run();
      vscode.window.setStatusBarMessage(`$(check) Mesh: ${done}`, PRESENCE_STATUS_MS);
      return true;
    } catch (e) {
      void vscode.window.showErrorMessage(`Mesh: ${errorText(e)}`);
      return false;
    }
  }

  /** `mesh.admit` / `mesh.refuse`: pick among those waiting. */
  async answer(admit: boolean): Promise<void> {
    const waiting = this.ctx.state.kind === 'running' ? (this.ctx.state.status.joinRequests ?? []) : [];
    if (waiting.length === 0) {
      void vscode.window.showInformationMessage('Mesh: nobody is waiting to join.');
      return;
    }
    const pick = await vscode.window.showQuickPick(
      waiting.map((w) => ({ label: w.name, description: w.client, req: w })),
      { placeHolder: admit ? 'Let whom in?' : 'Turn whom away?' },
    );
    if (pick === undefined) {
      return;
    }
    const method = admit ? EditorRequests.admit : EditorRequests.refuse;
    await this.act(() => this.ctx.request(method, { seat: pick.req.seat }), `${admit ? 'let in' : 'turned away'} ${pick.req.name}`);
  }

  /** `mesh.manageParticipants` (or a participant from the view's menu): role changes and kick. */
  async manage(given?: Participant): Promise<void> {
    let person = given;
    if (person === undefined) {
      let room;
      try {
        room = await this.ctx.request(EditorRequests.hostParticipants, {});
      } catch (e) {
        void vscode.window.showErrorMessage(`Mesh: ${errorText(e)}`);
        return;
      }
      const others = room.participants.filter((p) => !p.you);
      if (others.length === 0) {
        void vscode.window.showInformationMessage('Mesh: nobody else is in the room.');
        return;
      }
      const pick = await vscode.window.showQuickPick(
        others.map((p) => ({ label: p.name, description: `${p.role}${p.verified === true ? '' : ', unverified'} · ${p.client}`, p })),
        { placeHolder: 'Whom?' },
      );
      person = pick?.p;
    }
    if (person?.seat === undefined) {
      return;
    }
    const actions = [
      ...roleChoices(person.role).map((role) => ({ label: roleLabel(role), role })),
      { label: 'Kick', role: undefined },
    ];
    const action = await vscode.window.showQuickPick(actions, { placeHolder: `${person.name} is ${person.role}` });
    if (action === undefined) {
      return;
    }
    if (action.role !== undefined) {
      await this.setRole(person, action.role);
    } else {
      await this.kick(person);
    }
  }

  async setRole(person: Participant, role: Role): Promise<void> {
    if (person.seat === undefined) {
      return;
    }
    const seat = person.seat;
    await this.act(() => this.ctx.request(EditorRequests.setRole, { seat, role }), `${person.name} is now ${role}`);
  }

  /** Kicks, then offers to revoke the link they came in by (no accounts: a kicked person may
   * take a new seat with the same link). Revoking it disconnects everyone else who used it
   * too, so it is a choice, named as such. */
  async kick(person: Participant): Promise<void> {
    if (person.seat === undefined) {
      return;
    }
    const seat = person.seat;
    if (!(await this.act(() => this.ctx.request(EditorRequests.kick, { seat }), `removed ${person.name}`))) {
      return;
    }
    let links: Link[];
    try {
      links = (await this.ctx.request(EditorRequests.links, {})).links.filter((l) => !l.revoked && l.role !== 'host');
    } catch {
      return;
    }
    const theirs = links.find((l) => l.id === person.link);
    if (theirs === undefined) {
      // Their link is gone already (revoked, expired, a host link): nothing to offer.
      return;
    }
    const pick = await vscode.window.showQuickPick(
      [
        { label: 'Keep the link', revoke: false },
        {
          label: `Revoke the ${linkLabel(theirs)} they came in by`,
          detail: `Anyone else who came in with it (${theirs.uses} use${theirs.uses === 1 ? '' : 's'}) is disconnected too.`,
          revoke: true,
        },
      ],
      { placeHolder: `${person.name} could come back with the link they used. Revoke it?` },
    );
    if (pick?.revoke === true) {
      const id = theirs.id;
      await this.act(() => this.ctx.request(EditorRequests.revokeLink, { id }), `revoked link ${id}`);
    }
  }

  /** `mesh.toggleApproval`. */
  async toggleApproval(): Promise<void> {
    const on = !(this.ctx.state.kind === 'running' && this.ctx.state.status.approval === true);
    await this.act(
      () => this.ctx.request(EditorRequests.setApproval, { on }),
      on ? 'joiners now wait for your approval' : 'joiners come straight in',
    );
  }

  /** `mesh.manageLinks`: copy, revoke, create. */
  async links(): Promise<void> {
    let links: Link[];
    try {
      links = (await this.ctx.request(EditorRequests.links, {})).links.filter((l) => l.role !== 'host');
    } catch (e) {
      void vscode.window.showErrorMessage(`Mesh: ${errorText(e)}`);
      return;
    }
    const pick = await vscode.window.showQuickPick(
      [
        { label: '$(add) Create a Writer Link', create: 'writer' as const, link: undefined },
        { label: '$(add) Create a Reader Link', create: 'reader' as const, link: undefined },
        ...links.map((l) => ({ label: linkLabel(l), create: undefined, link: l })),
      ],
      { placeHolder: 'Links' },
    );
    if (pick === undefined) {
      return;
    }
    if (pick.create !== undefined) {
      try {
        const link = await this.ctx.request(EditorRequests.createLink, { role: pick.create });
        await vscode.env.clipboard.writeText(link.url);
        void vscode.window.showInformationMessage(`Mesh: a new ${link.role} link is on your clipboard.`);
      } catch (e) {
        void vscode.window.showErrorMessage(`Mesh: ${errorText(e)}`);
      }
      return;
    }
    const link = pick.link;
    if (link === undefined) {
      return;
    }
    const what = await vscode.window.showQuickPick(link.revoked ? ['Copy'] : ['Copy', 'Revoke'], { placeHolder: linkLabel(link) });
    if (what === 'Copy') {
      await vscode.env.clipboard.writeText(link.url);
      vscode.window.setStatusBarMessage('$(copy) Mesh: link copied', PRESENCE_STATUS_MS);
    } else if (what === 'Revoke') {
      await this.act(() => this.ctx.request(EditorRequests.revokeLink, { id: link.id }), `revoked link ${link.id}`);
    }
  }

  /** `mesh.showAudit`: the audit trail in a read-only document. */
  async audit(): Promise<void> {
    try {
      const { entries } = await this.ctx.request(EditorRequests.audit, { limit: 500 });
      const lines = entries.map(
        (e) => `${new Date(e.ts).toISOString()}  ${e.kind.padEnd(16)} ${e.actor}  ${e.subject}  ${e.detail}`,
      );
      const doc = await vscode.workspace.openTextDocument({ content: ['Mesh audit trail (newest first)', ...lines].join('\n') });
      await vscode.window.showTextDocument(doc, { preview: true });
    } catch (e) {
      void vscode.window.showErrorMessage(`Mesh: ${errorText(e)}`);
    }
  }
}
