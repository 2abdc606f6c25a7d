/**
 * The screens in front of the room: the lobby (the room makes joiners wait for the host's
 * approval: "waiting for the host to let you in", with the name the others will see and a
 * Cancel) and the end (removed by the host, turned away, the link stopped working, or the
 * person left the lobby), each saying what happened and what to do next.
 */
import { h, fill } from './dom.js'
import { signInUrl } from '../net/account.js'

export class Gate {
  readonly el: HTMLElement

  constructor () {
    this.el = h('main', { class: 'home gate', hidden: true })
  }

  get shown (): boolean {
    return !this.el.hidden
  }

  hide (): void {
    this.el.hidden = true
    fill(this.el)
  }

  /** The lobby: who we are, what the server said, and a way out. */
  lobby (name: string, message: string, cancel: () => void): void {
    const button = h('button', { type: 'button', 'data-action': 'cancel' }, 'Cancel')
    button.addEventListener('click', cancel)
    this.show(h('section', { class: 'card lobby', 'data-testid': 'lobby', role: 'status', 'aria-live': 'polite' },
      h('h2', {}, 'Waiting for the host to let you in'),
      h('p', {}, 'You asked to join as ', h('strong', { 'data-testid': 'lobby-name' }, name), '. The host sees your request now; this page opens the session as soon as they admit you.'),
      message && h('p', { class: 'muted' }, message),
      h('p', { class: 'muted' }, 'Names are not verified: tell the host who you are if they may not recognise the name.'),
      h('div', { class: 'row' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), button)))
  }

  /** The room is over for this page. */
  ended (title: string, message: string, again?: () => void): void {
    const actions = h('div', { class: 'row' }, h('a', { href: '/' }, 'Go to the start page'))
    // An invitation for a signed-in person, or a seat that is someone's: offer the sign-in,
    // which comes back to this very link.
    if (/sign in/i.test(message)) {
      actions.prepend(h('a', { class: 'button', href: signInUrl(`${location.pathname}${location.search}`), 'data-testid': 'sign-in' }, 'Sign in'))
    }
    if (again) {
      const b = h('button', { type: 'button', 'data-action': 'ask-again' }, 'Ask to join again')
      b.addEventListener('click', again)
      actions.prepend(b)
    }
    this.show(h('section', { class: 'card ended', 'data-testid': 'ended', role: 'alert' },
      h('h2', {}, title), h('p', { 'data-testid': 'ended-message' }, message), actions))
  }

  private show (card: HTMLElement): void {
    fill(this.el, h('h1', {}, 'mesh'), card)
    this.el.hidden = false
  }
}
