/**
 * The host's two dialogs, loaded the first time the host opens one (most pages never hold
 * the host role, so they never download this): the links dialog (every link of the room
 * with its role, expiry and uses; create a reader or writer link with an expiry and a use
 * limit, copy it; revoke one) and the audit view (who did what, newest first).
 */
import type { MeshProvider } from '../net/provider.js'
import type { AuditEntry, ClientMessage, LinkInfo, Role } from '../net/messages.js'
import { LINK_EXPIRIES, auditLine, linkOnOrigin, linkSummary, parseMaxUses } from '../room/host-admin.js'
import { h, fill } from './dom.js'
import { me } from '../net/account.js'

/** How many audit entries the audit view asks for: a screenful's scroll, not the whole trail. */
const AUDIT_LIMIT = 200

/** Sends a host message, or says that it could not; returns its request id. */
export type HostSend = (msg: ClientMessage, what: string) => number | null

export class HostDialogs {
  private readonly linksDialog: HTMLDialogElement
  private readonly linksList: HTMLElement
  private readonly linksProblem: HTMLElement
  private readonly auditDialog: HTMLDialogElement
  private readonly auditList: HTMLElement
  private links: LinkInfo[] = []
  /** The id of our last `create_link`, whose answer shows the new link on top. */
  private createdBy: number | null = null
  private fresh: string | null = null

  constructor (private readonly provider: MeshProvider, private readonly send: HostSend, private readonly notify: (text: string) => void, parent: HTMLElement) {
    this.linksList = h('ul', { class: 'links', 'data-testid': 'links-list' })
    this.linksProblem = h('p', { class: 'problem', role: 'alert' })
    this.linksDialog = dialog('links-dialog', 'Join links', this.createLinkForm(), this.linksProblem, this.linksList)
    this.auditList = h('ol', { class: 'audit', 'data-testid': 'audit-list' })
    const refresh = h('button', { type: 'button', class: 'small' }, 'Refresh')
    refresh.addEventListener('click', () => this.openAudit())
    this.auditDialog = dialog('audit-dialog', 'Audit log', refresh, this.auditList)
    parent.append(this.linksDialog, this.auditDialog)
    provider.on('message', (m) => {
      switch (m.type) {
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

  /** Closes both (the page is no longer the host). */
  close (): void {
    for (const d of [this.linksDialog, this.auditDialog]) if (d.open) d.close()
  }

  openLinks (): void {
    fill(this.linksProblem)
    this.send({ type: 'list_links' }, 'asking for the links')
    if (!this.linksDialog.open) this.linksDialog.showModal()
  }

  openAudit (): void {
    this.send({ type: 'audit', limit: AUDIT_LIMIT }, 'asking for the audit log')
    if (!this.auditDialog.open) this.auditDialog.showModal()
  }

  private createLinkForm (): HTMLElement {
    const role = h('select', { name: 'role', 'data-testid': 'link-role' },
      h('option', { value: 'writer' }, 'can edit (writer)'), h('option', { value: 'reader' }, 'read only (reader)'))
    const expiry = h('select', { name: 'expiry', 'data-testid': 'link-expiry' },
      ...LINK_EXPIRIES.map(e => h('option', { value: e.secs }, e.label)))
    expiry.value = String(LINK_EXPIRIES[1].secs)
    const uses = h('input', { name: 'uses', inputmode: 'numeric', placeholder: 'no limit', size: 8, 'data-testid': 'link-uses' })
    // With accounts on, a link may be an invitation for one signed-in person.
    const only = h('input', { name: 'for_user', placeholder: 'anyone with the link', maxlength: 254, size: 22, 'data-testid': 'link-for' })
    const onlyLabel = h('label', { hidden: true, title: 'An email or the sign-in subject: only that person, signed in, can use the link' }, 'Only for', only)
    void me().then(m => { onlyLabel.hidden = !m.accounts })
    const form = h('form', { class: 'link-form', 'data-testid': 'create-link' },
      h('label', {}, 'Who', role), h('label', {}, 'Works for', expiry), h('label', {}, 'People (uses)', uses), onlyLabel,
      h('button', { type: 'submit' }, 'Create link'))
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      fill(this.linksProblem)
      const max = parseMaxUses(uses.value)
      if (!max.ok) { fill(this.linksProblem, max.reason); return }
      const msg: ClientMessage = { type: 'create_link', role: role.value as Role, expires_in_secs: Number(expiry.value) }
      if (max.value !== undefined) msg.max_uses = max.value
      if (only.value.trim()) msg.for_user = only.value.trim()
      this.createdBy = this.send(msg, 'creating the link')
      uses.value = ''
      only.value = ''
    })
    return form
  }

  private renderLinks (): void {
    const now = Date.now()
    fill(this.linksList, ...this.links.map(link => {
      const s = linkSummary(link, now)
      const input = h('input', { readonly: true, value: linkOnOrigin(link.url, location.origin) ?? link.url, 'data-testid': 'link-url' })
      const copy = h('button', { type: 'button', class: 'small' }, 'Copy')
      copy.addEventListener('click', () => {
        input.select()
        navigator.clipboard?.writeText(input.value).then(() => this.notify('Link copied.'), () => { /* selected for manual copy */ })
      })
      const row = h('span', { class: 'row' }, input, copy)
      if (s.state === 'active' && link.role !== 'host') {
        const revoke = h('button', { type: 'button', class: 'small danger', 'data-action': 'revoke' }, 'Revoke')
        revoke.addEventListener('click', () => {
          revoke.disabled = true
          this.send({ type: 'revoke_link', link: link.id }, 'revoking the link')
        })
        row.append(revoke)
      }
      return h('li', { 'data-link': link.id, 'data-state': s.state, class: link.id === this.fresh ? 'fresh' : '' },
        h('div', { class: 'link-meta' }, h('span', { class: `badge ${link.role}` }, link.role), h('span', {}, s.expires), h('span', {}, s.uses),
          s.only !== null && h('span', { class: 'link-only', 'data-testid': 'link-only' }, s.only)),
        row)
    }))
    if (this.links.length === 0) fill(this.linksList, h('li', { class: 'empty' }, 'No links yet.'))
  }

  private renderAudit (entries: AuditEntry[]): void {
    const names = this.provider.seatNames
    fill(this.auditList, ...entries.map(e => h('li', { 'data-kind': e.kind },
      h('time', { datetime: new Date(e.ts).toISOString() }, new Date(e.ts).toLocaleString()),
      h('span', {}, auditLine(e, seat => names.get(seat))))))
    if (entries.length === 0) fill(this.auditList, h('li', { class: 'empty' }, 'Nothing yet.'))
  }
}

function dialog (testid: string, title: string, ...body: Array<Node | string>): HTMLDialogElement {
  const close = h('button', { type: 'button', class: 'small', 'aria-label': 'Close' }, 'Close')
  const d = h('dialog', { class: 'host-dialog', 'data-testid': testid },
    h('header', {}, h('h2', {}, title), close), ...body)
  close.addEventListener('click', () => d.close())
  return d
}
