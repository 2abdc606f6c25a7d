/**
 * The host's controls (decision 011), shown only while this page holds the host role: join
 * requests as a prompt at the top of the page (several can wait; each with Admit and
 * Refuse), the approval switch, the links dialog (list, create, copy, revoke), the audit
 * view, and the actions on each person in the People panel (make writer or reader, make
 * host, kick, with "also revoke their link"). Everything goes to the server as host
 * messages; the server checks the role again and answers, so the page only offers.
 */
import type { MeshProvider } from '../net/provider.js'
import type { AuditEntry, LinkInfo, Participant, Role } from '../net/messages.js'
import { LINK_EXPIRIES, auditLine, linkOnOrigin, linkSummary, parseMaxUses, seatActions } from '../room/host.js'
import { h, fill } from './dom.js'

/** How long a "Make host" button waits for its confirming second click. */
const CONFIRM_MS = 3000

/** How many audit entries the audit view asks for: a screenful's scroll, not the whole trail. */
const AUDIT_LIMIT = 200

export class HostControls {
  /** The Host section (approval, links, audit), under People. */
  readonly panel: HTMLElement
  /** The join requests, a prompt at the top of the page. */
  readonly requests: HTMLElement
  private readonly approval: HTMLInputElement
  private readonly linksDialog: HTMLDialogElement
  private readonly linksList: HTMLElement
  private readonly linksProblem: HTMLElement
  private readonly auditDialog: HTMLDialogElement
  private readonly auditList: HTMLElement
  private readonly kickDialog: HTMLDialogElement
  private readonly waiting = new Map<string, HTMLElement>()
  private links: LinkInfo[] = []
  /** The id of our last `create_link`, whose answer shows the new link on top. */
  private createdBy: number | null = null
  private fresh: string | null = null

  constructor (private readonly provider: MeshProvider, private readonly notify: (text: string) => void) {
    this.approval = h('input', { type: 'checkbox', 'data-testid': 'approval-toggle' })
    this.approval.addEventListener('change', () => {
      if (provider.send({ type: 'set_approval', on: this.approval.checked }) === null) {
        this.approval.checked = provider.approval
        notify('not connected: approval was not changed; try again once the status says connected')
      }
    })
    const linksButton = h('button', { type: 'button', class: 'small', 'data-testid': 'open-links' }, 'Links…')
    linksButton.addEventListener('click', () => this.openLinks())
    const auditButton = h('button', { type: 'button', class: 'small', 'data-testid': 'open-audit' }, 'Audit log…')
    auditButton.addEventListener('click', () => this.openAudit())
    this.panel = h('section', { class: 'panel host', 'data-testid': 'host-panel', hidden: true },
      h('h2', {}, 'Host'),
      h('div', { class: 'host-body' },
        h('label', { class: 'check' }, this.approval, 'Ask me before anyone joins'),
        h('div', { class: 'row' }, linksButton, auditButton)))
    this.requests = h('div', { class: 'join-requests', 'data-testid': 'join-requests', role: 'alert', hidden: true })

    this.linksList = h('ul', { class: 'links', 'data-testid': 'links-list' })
    this.linksProblem = h('p', { class: 'problem', role: 'alert' })
    this.linksDialog = this.dialog('links-dialog', 'Join links', this.createLinkForm(), this.linksProblem, this.linksList)
    this.auditList = h('ol', { class: 'audit', 'data-testid': 'audit-list' })
    const refresh = h('button', { type: 'button', class: 'small' }, 'Refresh')
    refresh.addEventListener('click', () => this.openAudit())
    this.auditDialog = this.dialog('audit-dialog', 'Audit log', refresh, this.auditList)
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
        case 'join_request': this.addRequest(m.seat, m.name, m.client); break
        case 'join_request_closed': this.closeRequest(m.seat, m.admitted, m.by); break
        case 'links':
          if (m.responding_to !== undefined && m.responding_to === this.createdBy) this.fresh = m.links[0]?.id ?? null
          this.links = m.links
          this.renderLinks()
          break
        case 'audit_log': this.renderAudit(m.entries); break
        case 'error':
          if (m.responding_to !== undefined && m.responding_to === this.createdBy) fill(this.linksProblem, m.message)
          break
        default: break
      }
    })
  }

  /** The dialogs, to add to the page once. */
  get dialogs (): HTMLElement[] {
    return [this.linksDialog, this.auditDialog, this.kickDialog]
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
      for (const d of this.dialogs) if (d instanceof HTMLDialogElement && d.open) d.close()
    }
  }

  private send (msg: Parameters<MeshProvider['send']>[0], what: string): number | null {
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

  private dialog (testid: string, title: string, ...body: Array<Node | string>): HTMLDialogElement {
    const close = h('button', { type: 'button', class: 'small', 'aria-label': 'Close' }, 'Close')
    const d = h('dialog', { class: 'host-dialog', 'data-testid': testid },
      h('header', {}, h('h2', {}, title), close), ...body)
    close.addEventListener('click', () => d.close())
    return d
  }

  // --- join requests ---------------------------------------------------------------------

  private addRequest (seat: string, name: string, client: string): void {
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
      h('span', {}, h('strong', {}, name), h('small', { class: 'unverified', title: 'Names are not verified: anyone can type any name' }, ' (name not verified)'),
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
      if (p.link) this.send({ type: 'revoke_link', id: p.link }, 'revoking their link')
      else this.openLinks()
    })
    this.kickDialog.showModal()
  }

  // --- links -----------------------------------------------------------------------------

  private openLinks (): void {
    fill(this.linksProblem)
    this.send({ type: 'list_links' }, 'asking for the links')
    if (!this.linksDialog.open) this.linksDialog.showModal()
  }

  private createLinkForm (): HTMLElement {
    const role = h('select', { name: 'role', 'data-testid': 'link-role' },
      h('option', { value: 'writer' }, 'can edit (writer)'), h('option', { value: 'reader' }, 'read only (reader)'))
    const expiry = h('select', { name: 'expiry', 'data-testid': 'link-expiry' },
      ...LINK_EXPIRIES.map(e => h('option', { value: e.secs }, e.label)))
    expiry.value = String(LINK_EXPIRIES[1].secs)
    const uses = h('input', { name: 'uses', inputmode: 'numeric', placeholder: 'no limit', size: 8, 'data-testid': 'link-uses' })
    const form = h('form', { class: 'link-form', 'data-testid': 'create-link' },
      h('label', {}, 'Who', role), h('label', {}, 'Works for', expiry), h('label', {}, 'People (uses)', uses),
      h('button', { type: 'submit' }, 'Create link'))
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      fill(this.linksProblem)
      const max = parseMaxUses(uses.value)
      if (!max.ok) { fill(this.linksProblem, max.reason); return }
      const msg: Parameters<MeshProvider['send']>[0] = { type: 'create_link', role: role.value as Role, expires_in_secs: Number(expiry.value) }
      if (max.value !== undefined) msg.max_uses = max.value
      this.createdBy = this.send(msg, 'creating the link')
      uses.value = ''
    })
    return form
  }

  private renderLinks (): void {
    const now = Date.now()
    fill(this.linksList, ...this.links.map(link => {
      const s = linkSummary(link, now)
      const url = linkOnOrigin(link.url, location.origin) ?? link.url
      const input = h('input', { readonly: true, value: url, 'data-testid': 'link-url' })
      const copy = h('button', { type: 'button', class: 'small' }, 'Copy')
      copy.addEventListener('click', () => {
        input.select()
        navigator.clipboard?.writeText(input.value).then(() => this.notify('Link copied.'), () => { /* selected for manual copy */ })
      })
      const li = h('li', { 'data-link': link.id, 'data-state': s.state, class: link.id === this.fresh ? 'fresh' : '' },
        h('div', { class: 'link-meta' }, h('span', { class: `badge ${link.role}` }, link.role), h('span', {}, s.expires), h('span', {}, s.uses)),
        h('span', { class: 'row' }, input, copy))
      if (s.state === 'active' && link.role !== 'host') {
        const revoke = h('button', { type: 'button', class: 'small danger', 'data-action': 'revoke' }, 'Revoke')
        revoke.addEventListener('click', () => {
          revoke.disabled = true
          this.send({ type: 'revoke_link', id: link.id }, 'revoking the link')
        })
        li.querySelector('.row')?.append(revoke)
      }
      return li
    }))
    if (this.links.length === 0) fill(this.linksList, h('li', { class: 'empty' }, 'No links yet.'))
  }

  // --- audit -----------------------------------------------------------------------------

  private openAudit (): void {
    this.send({ type: 'audit', limit: AUDIT_LIMIT }, 'asking for the audit log')
    if (!this.auditDialog.open) this.auditDialog.showModal()
  }

  private renderAudit (entries: AuditEntry[]): void {
    const names = new Map<string, string>()
    for (const p of this.provider.participants.values()) names.set(p.seat, p.name)
    fill(this.auditList, ...entries.map(e => h('li', { 'data-kind': e.kind },
      h('time', { datetime: new Date(e.ts).toISOString() }, new Date(e.ts).toLocaleString()),
      h('span', {}, auditLine(e, seat => names.get(seat))))))
    if (entries.length === 0) fill(this.auditList, h('li', { class: 'empty' }, 'Nothing yet.'))
  }
}
