// Host control's end-to-end steps (called by tests/e2e.mjs with its context), in real
// Chromium against the real server (decision 011): a host page creates its own room; the
// host turns approval on; a guest page waits in the lobby with no document until the host
// admits it; it types; the host makes it a reader (its editor goes read-only and its keys do
// not reach the host), a writer again, and kicks it (the page says so, and its seat token no
// longer opens the room); a link created and then revoked in the links dialog stops working,
// for the page using it and for anyone opening it later; the audit view lists all of it.
// Every page's room socket carries no token in its URL.
//
// Every wait is for a condition; none sleeps.

import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/** The close codes a refused token gets (`ErrorCode::Unauthorized`, `Forbidden`). */
const REFUSED_CLOSES = [4401, 4403]

export async function hostSteps (ctx) {
  const { serverUrl, step, shot, newPage, closePage, waitText, editorText, until, WAIT_MS, KEY_DELAY_MS } = ctx
  const wait = { timeout: WAIT_MS }

  /** Every room socket a page opens, to check none carries the token in its URL. */
  const sockets = []
  const watch = (page) => { page.on('websocket', ws => sockets.push(ws.url())); return page }
  const host = watch(await newPage('host'))
  let roomId, joinLink

  const person = (name) => `[data-testid=people] li:has(.name:text-is("${name}"))`
  const notice = (page, re) => page.waitForFunction((src) => [...document.querySelectorAll('[data-testid=notice]')]
    .some(n => new RegExp(src).test(n.textContent)), re.source, wait).catch(e => { throw new Error(`no notice matching ${re}: ${e.message}`) })
  const readOnly = (page) => page.evaluate(() => document.querySelector('.cm-editor[data-path="main.py"]').meshEditor.readOnly())
  const typeAtEnd = async (page, text) => {
    await page.click('.cm-editor[data-path="main.py"] .cm-content')
    await page.keyboard.press('Control+End')
    await page.keyboard.type(text, { delay: KEY_DELAY_MS })
  }

  await step('host-creates-a-room-and-the-token-leaves-the-url', async () => {
    await host.goto(`${serverUrl}/`)
    await host.fill('[data-testid=create] input[name=name]', 'Hana')
    await host.fill('[data-testid=create] input[name=session]', 'host control')
    await host.selectOption('[data-testid=create] select', 'python')
    await host.click('[data-testid=create] button[type=submit]')
    await host.waitForSelector('[data-testid=role]:text("host")', wait)
    await host.waitForSelector('[data-testid=host-panel]:visible', wait)
    await waitText(host, 'main.py', ['Hello'], 'the starter file in the host page')
    roomId = new URL(host.url()).pathname.split('/').pop()
    if (new URL(host.url()).searchParams.has('token')) throw new Error(`the token is still in the address bar: ${host.url()}`)
    joinLink = await host.inputValue('[data-testid=join-link]')
    if (!new URL(joinLink).searchParams.get('token')) throw new Error(`the invite link has no token: ${joinLink}`)
  })

  const guest = watch(await newPage('guest'))
  await step('approval-on-and-a-joiner-waits-in-the-lobby', async () => {
    await host.check('[data-testid=approval-toggle]')
    await notice(host, /You turned approval on/)
    await guest.goto(joinLink)
    await guest.fill('[data-testid=name-gate] input', 'Gus')
    await guest.click('[data-testid=name-gate] button[type=submit]')
    await guest.waitForSelector('[data-testid=lobby]:visible:has-text("Waiting for the host to let you in")', wait)
    if (await guest.textContent('[data-testid=lobby-name]') !== 'Gus') throw new Error('the lobby does not show the name')
    // The host sees the request where they are, the name marked as not verified.
    const request = host.locator('[data-testid=join-requests] .join-request[data-name="Gus"]')
    await request.waitFor(wait)
    if (!/not verified/.test(await request.textContent())) throw new Error('the request does not say the name is unverified')
    // Nothing of the room reached the waiting page: no file, no editor, no people.
    const seen = await guest.evaluate(() => ({
      editors: document.querySelectorAll('.cm-editor').length,
      files: document.querySelectorAll('[data-testid=file-tree] li').length,
      people: document.querySelectorAll('[data-testid=people] li').length,
    }))
    if (seen.editors || seen.files || seen.people) throw new Error(`the lobby page has room content: ${JSON.stringify(seen)}`)
  })

  const gusLine = '# Gus was let in: ✓\n'
  await step('host-admits-and-the-guest-types', async () => {
    await host.click('[data-testid=join-requests] .join-request[data-name="Gus"] [data-action=admit]')
    await host.waitForSelector('[data-testid=join-requests]', { state: 'hidden', timeout: WAIT_MS })
    await guest.waitForSelector('[data-testid=status][data-state=connected]', wait)
    await guest.waitForSelector('[data-testid=lobby]', { state: 'detached', timeout: WAIT_MS })
    await waitText(guest, 'main.py', ['Hello'], 'the file in the admitted page')
    await host.waitForSelector(`${person('Gus')}[data-role=writer]`, wait)
    await notice(host, /^Gus joined\.$/)
    await typeAtEnd(guest, gusLine)
    await waitText(host, 'main.py', [gusLine], 'the guest\'s line in the host page')
    // The host follows the guest: the guest is told.
    await host.click(`${person('Gus')} [data-action=follow]`)
    await notice(guest, /^Hana is following you\.$/)
    await host.click(`${person('Gus')} [data-action=follow]`)
    await notice(guest, /^Hana stopped following you\.$/)
    const notices = await host.$$eval('[data-testid=notice]', ns => ns.map(n => n.textContent))
    if (notices.some(n => /anonymous/.test(n))) throw new Error(`a join was announced before the joiner's name: ${notices}`)
  })

  await step('host-makes-the-guest-a-reader', async () => {
    await host.click(`${person('Gus')} [data-action=make-reader]`)
    await guest.waitForSelector('[data-testid=role]:text("reader")', wait)
    await guest.waitForSelector('[data-testid=reader-banner]:visible', wait)
    await notice(guest, /Hana made you a reader: the editor is read-only/)
    if (!(await readOnly(guest))) throw new Error('the reader\'s editor is not read-only')
    await guest.click('.cm-editor[data-path="main.py"] .cm-content')
    await guest.keyboard.type('SHOULD NOT ARRIVE')
    // The host writes after the reader's attempt; once the guest has the host's line, its
    // own keys had every chance to travel.
    await typeAtEnd(host, '# after the guest became a reader\n')
    await waitText(guest, 'main.py', ['# after the guest became a reader'], 'the host\'s line in the reader page')
    for (const [label, page] of [['host', host], ['guest', guest]]) {
      if ((await editorText(page, 'main.py')).includes('SHOULD NOT')) throw new Error(`the reader's keys reached the ${label} page`)
    }
    await host.waitForSelector(`${person('Gus')}[data-role=reader]`, wait)
  })

  const againLine = '# Gus writes again: ø\n'
  await step('host-makes-the-guest-a-writer-again', async () => {
    await host.click(`${person('Gus')} [data-action=make-writer]`)
    await guest.waitForSelector('[data-testid=role]:text("writer")', wait)
    await guest.waitForSelector('[data-testid=reader-banner]', { state: 'hidden', timeout: WAIT_MS })
    await notice(guest, /can edit again/)
    if (await readOnly(guest)) throw new Error('the writer\'s editor is still read-only')
    await typeAtEnd(guest, againLine)
    await waitText(host, 'main.py', [gusLine, againLine], 'the writer\'s new line in the host page')
  })

  await step('host-kicks-the-guest-whose-seat-then-opens-nothing', async () => {
    const seat = await guest.evaluate((room) => JSON.parse(sessionStorage.getItem(`mesh.seat:${room}`)), roomId)
    if (!seat?.token) throw new Error('the guest page kept no seat token')
    await host.click(`${person('Gus')} [data-action=kick]`)
    await host.waitForSelector('[data-testid=kick-dialog]:visible', wait)
    await host.click('[data-testid=kick-dialog] [data-action=confirm-kick]')
    await guest.waitForSelector('[data-testid=ended]:visible:has-text("You were removed from this session")', wait)
    if (!/Hana removed you/.test(await guest.textContent('[data-testid=ended-message]'))) throw new Error('the end does not say who removed the guest')
    await guest.waitForSelector('[data-testid=status][data-state=closed]', { state: 'attached', timeout: WAIT_MS })
    await host.waitForSelector(person('Gus'), { state: 'detached', timeout: WAIT_MS })
    await notice(host, /^You removed Gus from the session\.$/)
    // The seat's token no longer opens the room.
    const answer = await tryToken(serverUrl, roomId, seat.token, WAIT_MS)
    if (answer.welcomed || !REFUSED_CLOSES.includes(answer.code)) throw new Error(`the kicked seat's token was not refused: ${JSON.stringify(answer)}`)
  })

  const lin = watch(await newPage('lin'))
  let readLink
  await step('a-link-revoked-in-the-links-dialog-stops-working', async () => {
    await host.uncheck('[data-testid=approval-toggle]')
    await notice(host, /You turned approval off/)
    await host.click('[data-testid=open-links]')
    await host.waitForSelector('[data-testid=links-dialog]:visible', wait)
    await host.selectOption('[data-testid=link-role]', 'reader')
    await host.fill('[data-testid=link-uses]', '2')
    await host.click('[data-testid=create-link] button[type=submit]')
    const fresh = host.locator('[data-testid=links-list] li.fresh')
    await fresh.waitFor(wait)
    if (!/0 of 2 used/.test(await fresh.textContent())) throw new Error(`the new link does not show its use limit: ${await fresh.textContent()}`)
    readLink = await fresh.locator('[data-testid=link-url]').inputValue()
    const linkId = await fresh.getAttribute('data-link')
    await host.click('[data-testid=links-dialog] header button')
    // Someone joins with it, as a reader, asking for the host's name: names are unique.
    await lin.goto(readLink)
    await lin.fill('[data-testid=name-gate] input', 'Hana')
    await lin.click('[data-testid=name-gate] button[type=submit]')
    await lin.waitForSelector('[data-testid=role]:text("reader")', wait)
    await lin.waitForSelector('[data-testid=me]:text("you: Hana (2)")', wait)
    await notice(lin, /already called Hana, so the others see you as Hana \(2\)/)
    await host.waitForSelector(`${person('Hana (2)')}[data-role=reader]`, wait)
    await waitText(lin, 'main.py', [againLine], 'the file in the new link\'s page')
    // The host revokes it: the page using it ends, saying why.
    await host.click('[data-testid=open-links]')
    await host.waitForSelector(`[data-testid=links-list] li[data-link="${linkId}"]:has-text("1 of 2 used")`, wait)
    await host.click(`[data-testid=links-list] li[data-link="${linkId}"] [data-action=revoke]`)
    await host.waitForSelector(`[data-testid=links-list] li[data-link="${linkId}"][data-state=revoked]`, wait)
    await shot('links-dialog')
    await lin.waitForSelector('[data-testid=ended]:visible', wait)
    await host.waitForSelector(person('Hana (2)'), { state: 'detached', timeout: WAIT_MS })
    await host.click('[data-testid=links-dialog] header button')
  })

  const late = watch(await newPage('late'))
  await step('a-revoked-link-opens-nothing-later', async () => {
    await late.goto(readLink)
    await late.fill('[data-testid=name-gate] input', 'Late')
    await late.click('[data-testid=name-gate] button[type=submit]')
    await late.waitForSelector('[data-testid=ended]:visible', wait)
    const message = await late.textContent('[data-testid=ended-message]')
    if (!/revoked/i.test(message)) throw new Error(`the page does not say the link was revoked: ${message}`)
    if (await late.evaluate(() => document.querySelectorAll('.cm-editor').length)) throw new Error('a revoked link opened the document')
  })

  await step('the-audit-view-lists-what-happened', async () => {
    await host.click('[data-testid=open-audit]')
    await host.waitForSelector('[data-testid=audit-dialog]:visible', wait)
    for (const kind of ['approval_changed', 'admitted', 'role_changed', 'kicked', 'link_created', 'link_revoked']) {
      await host.waitForSelector(`[data-testid=audit-list] li[data-kind=${kind}]`, wait)
        .catch(e => { throw new Error(`no ${kind} entry in the audit view: ${e.message}`) })
    }
    await shot('audit-view')
    await host.click('[data-testid=audit-dialog] header button')
  })

  await step('no-room-socket-carried-a-token-in-its-url', async () => {
    await until('the pages opened their sockets', () => sockets.length >= 4)
    const leaky = sockets.filter(u => /token=/.test(u))
    if (leaky.length) throw new Error(`room sockets with a token in the URL: ${leaky.join(', ')}`)
  })

  for (const label of ['late', 'lin', 'guest', 'host']) await closePage(label)
}

/** Opens the room socket with `token` sent as the first `auth` message, as the page does;
 * says whether a `welcome` came and how the socket closed. */
async function tryToken (serverUrl, roomId, token, timeoutMs) {
  const ws = new WebSocket(`${serverUrl.replace('http', 'ws')}/ws/${roomId}`)
  ws.binaryType = 'arraybuffer'
  let welcomed = false
  const mesh = (msg) => {
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, 100)
    encoding.writeVarUint8Array(enc, new TextEncoder().encode(JSON.stringify(msg)))
    return encoding.toUint8Array(enc)
  }
  ws.on('open', () => {
    ws.send(mesh({ type: 'auth', token }))
    ws.send(mesh({ type: 'hello', version: 1, name: 'Gus again', client: 'test-peer' }))
  })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('the server neither welcomed nor closed the socket')) }, timeoutMs)
    ws.on('message', (data) => {
      const dec = decoding.createDecoder(new Uint8Array(data))
      if (decoding.readVarUint(dec) !== 100) return
      const msg = JSON.parse(new TextDecoder().decode(decoding.readVarUint8Array(dec)))
      if (msg.type !== 'welcome') return
      welcomed = true
      ws.close()
    })
    ws.on('close', (code, reason) => { clearTimeout(timer); resolve({ welcomed, code, reason: reason.toString() }) })
    ws.on('error', () => {})
  })
}
