/**
 * The host's controls (decision 011), shown only while this page holds the host role: join
 * requests as a prompt at the top of the page (several can wait; each with Admit and
 * Refuse), the approval switch, the buttons that open the links dialog and the audit view
 * (host-dialogs.ts, loaded on first use), and the actions on each person in the People
 * panel (make writer or reader, make host, kick, with "also revoke their link"). Everything
 * goes to the server as host messages; the server checks the role again and answers, so the
 * page only offers.
 */
import type { MeshProvider } from '../net/provider.js'
import type { ClientMessage, Participant, Role } from '../net/messages.js'
import { seatActions } from '../room/host.js'
import { h, fill } from './dom.js'
import type { HostDialogs } from './host-dialogs.js'

/** How long a "Make host" button waits for its confirming second click. */
const CONFIRM_MS = 3000


export class HostControls {
  /** The Host section (approval, links, audit), under People. */
  readonly panel: HTMLElement
  /** The join requests, a prompt at the top of the page. */
  readonly requests: HTMLElement
  /** The kick dialog, to add to the page once. */
  readonly kickDialog: HTMLDialogElement
  private readonly approval: HTMLInputElement
  private readonly waiting = new Map<string, HTMLElement>()
  private dialogs: Promise<HostDialogs> | null = null

  constructor (private readonly provider: MeshProvider, private readonly notify: (text: string) => void) {
    this.approval = h('input', { type: 'checkbox', 'data-testid': 'approval-toggle' })
    this.approval.addEventListener('change', () => {
      if (provider.send({ type: 'set_approval', on: this.approval.checked }) === null) {
        this.approval.checked = provider.approval
        notify('not connected: approval was not changed; try again once the status says connected')
      }
    })
    const linksButton = h('button', { type: 'button', class: 'small', 'data-testid': 'open-links' }, 'Links…')
    linksButton.addEventListener('click', () => { void this.withDialogs(d => d.openLinks()) })
    const auditButton = h('button', { type: 'button', class: 'small', 'data-testid': 'open-audit' }, 'Audit log…')
    auditButton.addEventListener('click', () => { void this.withDialogs(d => d.openAudit()) })
    this.panel = h('section', { class: 'panel host', 'data-testid': 'host-panel', hidden: true },
      h('h2', {}, 'Host'),
      h('div', { class: 'host-body' },
        h('label', { class: 'check' }, this.approval, 'Ask me before anyone joins'),
        h('div', { class: 'row' }, linksButton, auditButton)))
    this.requests = h('div', { class: 'join-requests', 'data-testid': 'join-requests', role: 'alert', hidden: true })
    this.kickDialog = h('dialog', { class: 'host-dialog', 'data-testid': 'kick-dialog' })

    provider.on('role', (role) => this.setRole(role))
    provider.on('welcome', () => {
      // The server tells a host who waits again after each connection.
      this.waiting.clear()
      this.renderRequests()
      this.approval.checked = provider.approval
    })
    provider.on('message', (m) => {
      switch (m.type) {
        case 'approval_changed': this.approval.checked = m.on; break
        case 'join_request': this.addRequest(m.seat, m.name, m.client, m.verified); break
        case 'join_request_closed': this.closeRequest(m.seat, m.admitted, m.by); break
        default: break
      }
    })
  }

  /** Runs `fn` with the links and audit dialogs, loading them the first time. */
  private async withDialogs (fn: (d: HostDialogs) => void): Promise<void> {
    this.dialogs ??= import('./host-dialogs.js').then(m => new m.HostDialogs(this.provider, (msg, what) => this.send(msg, what), this.notify, document.body))
    try {
      fn(await this.dialogs)
    } catch (e) {
      this.dialogs = null
      this.notify(`the host's dialogs could not be loaded (${e instanceof Error ? e.message : String(e)}); reload the page to try again`)
    }
  }

  /** The host's buttons for one person in the People panel (none unless we are the host). */
  actionsFor (p: Participant): HTMLElement | null {
    const actions = seatActions(p, { role: this.provider.role, seat: this.provider.seat })
    if (actions.length === 0) return null
    return h('div', { class: 'host-actions' }, ...actions.map(a => {
      const b = h('button', { type: 'button', class: 'small', 'data-action': a.kind === 'kick' ? 'kick' : `make-${a.role}` }, a.label)
      if (a.kind === 'kick') b.addEventListener('click', () => this.confirmKick(p))
      else if (a.role === 'host') this.armed(b, `Make ${p.name} host?`, () => this.setRoleOf(p, 'host'))
      else b.addEventListener('click', () => this.setRoleOf(p, a.role))
      return b
    }))
  }

  private setRole (role: Role): void {
    const host = role === 'host'
    this.panel.hidden = !host
    if (!host) {
      this.waiting.clear()
      this.renderRequests()
      if (this.kickDialog.open) this.kickDialog.close()
      void this.dialogs?.then(d => d.close())
    }
  }

  private send (msg: ClientMessage, what: string): number | null {
    const id = this.provider.send(msg)
    if (id === null) this.notify(`not connected: ${what} did not reach the server; try again once the status says connected`)
    return id
  }

  private setRoleOf (p: Participant, role: Role): void {
    this.send({ type: 'set_role', seat: p.seat, role }, `making ${p.name} a ${role}`)
  }

  /** A button that asks "are you sure" by changing its label, and acts on a second click. */
  private armed (b: HTMLButtonElement, question: string, act: () => void): void {
    const label = b.textContent ?? ''
    let timer: ReturnType<typeof setTimeout> | null = null
    b.addEventListener('click', () => {
      if (timer === null) {
        b.textContent = question
        b.classList.add('armed')
        timer = setTimeout(() => { timer = null; b.textContent = label; b.classList.remove('armed') }, CONFIRM_MS)
        return
      }
      clearTimeout(timer)
      act()
    })
  }

  // --- join requests ---------------------------------------------------------------------

  private addRequest (seat: string, name: string, client: string, verified: boolean): void {
    if (this.provider.role !== 'host') return
    const admit = h('button', { type: 'button', class: 'admit', 'data-action': 'admit' }, 'Admit')
    const refuse = h('button', { type: 'button', 'data-action': 'refuse' }, 'Refuse')
    const answer = (type: 'admit' | 'refuse') => {
      if (this.send({ type, seat }, `${type === 'admit' ? 'admitting' : 'refusing'} ${name}`) === null) return
      admit.disabled = refuse.disabled = true
    }
    admit.addEventListener('click', () => answer('admit'))
    refuse.addEventListener('click', () => answer('refuse'))
    this.waiting.set(seat, h('div', { class: 'join-request', 'data-seat': seat, 'data-name': name },
      h('span', {}, h('strong', {}, name),
        verified
          ? h('span', { class: 'verified', title: 'Signed in: the name is verified' }, ' ✓')
          : h('small', { class: 'unverified', title: 'Names are not verified: anyone can type any name' }, ' (name not verified)'),
        ` wants to join from ${client}.`),
      admit, refuse))
    this.renderRequests()
  }

  private closeRequest (seat: string, admitted: boolean, by: string): void {
    const el = this.waiting.get(seat)
    if (!el) return
    this.waiting.delete(seat)
    this.renderRequests()
    const name = el.dataset.name ?? 'someone'
    if (by === 'timeout') this.notify(`${name} waited too long and was turned away; they can ask again.`)
    else if (by === 'left') this.notify(`${name} stopped waiting.`)
    else if (by !== this.provider.name) this.notify(`${by} ${admitted ? 'let in' : 'turned away'} ${name}.`)
  }

  private renderRequests (): void {
    fill(this.requests, ...this.waiting.values())
    this.requests.hidden = this.waiting.size === 0
  }

  // --- kick ------------------------------------------------------------------------------

  private confirmKick (p: Participant): void {
    const revoke = h('input', { type: 'checkbox', 'data-testid': 'kick-revoke' })
    const kick = h('button', { type: 'button', class: 'danger', 'data-action': 'confirm-kick' }, `Remove ${p.name}`)
    const cancel = h('button', { type: 'button' }, 'Cancel')
    fill(this.kickDialog,
      h('header', {}, h('h2', {}, `Remove ${p.name}?`)),
      h('p', {}, 'Their connections close and their seat stops working. Without sign-in they could come back through the link they used, so you may end that link too.'),
      h('label', { class: 'check' }, revoke, p.link ? 'Also revoke the link they joined with (everyone else using it loses access too)' : 'Then show the links, to revoke the one they used'),
      h('div', { class: 'row' }, kick, cancel))
    cancel.addEventListener('click', () => this.kickDialog.close())
    kick.addEventListener('click', () => {
      this.kickDialog.close()
      if (this.send({ type: 'kick', seat: p.seat }, `removing ${p.name}`) === null) return
      if (!revoke.checked) return
      if (p.link) this.send({ type: 'revoke_link', link: p.link }, 'revoking their link')
      else void this.withDialogs(d => d.openLinks())
    })
    this.kickDialog.showModal()
  }
}
