// Sign-in end to end in real Chromium (decision 012): a real OpenID Connect provider
// (`oidc-provider` from npm, tests/oidc/provider.mjs) and a real mesh-server with accounts
// on, both on loopback. Ada signs in from the start page through the provider's login form,
// creates a room (hers), and a second page without an account sees her name verified and its
// own not; the same name typed by the guest gets " (2)". Ada's links dialog makes an
// invitation for bob@example.test: a page that opens it without signing in is told to sign
// in, signs in as Bob through the same form, and comes back into the room verified.
//
//   node tests/e2e/accounts.mjs      (scripts/test-web runs it after tests/e2e.mjs)
//
// MESH_SERVER_BIN, CHROMIUM as for tests/e2e.mjs. Screenshots go to artifacts/web-accounts/.
// The last line says `N passed, N failed`. Every wait is for a condition; none sleeps.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target')
const SERVER_BIN = process.env.MESH_SERVER_BIN ?? join(TARGET, 'debug', 'mesh-server')
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const ARTIFACTS = join(ROOT, 'artifacts', 'web-accounts')
const PROVIDER = join(ROOT, 'tests', 'oidc', 'provider.mjs')
/** How long any one expectation may take to come true: generous for a loaded 2-core CI. */
const WAIT_MS = 30_000
const wait = { timeout: WAIT_MS }

const tmp = mkdtempSync(join(tmpdir(), 'mesh-web-accounts-'))
const cleanups = []
const results = []
const pages = {}
let shotNo = 0

function log (...args) { console.log('[accounts]', ...args) }

/** Starts `cmd args`, resolves with what follows `prefix` on its first stdout line. */
async function startPrinting (cmd, args, prefix, env = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } })
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })
  const lines = createInterface({ input: child.stdout })
  const [first] = await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => { throw new Error(`${cmd} exited (${code}) before it listened`) }),
  ])
  if (!first.startsWith(prefix)) throw new Error(`unexpected first line from ${cmd}: ${first}`)
  lines.on('line', () => {})
  return first.slice(prefix.length).trim()
}

let serverUrl, issuer, browser

async function newPage (label) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 } })
  const page = await context.newPage()
  page.problems = []
  page.on('pageerror', e => page.problems.push(`page error: ${e.message}`))
  // mesh's own pages talk only to their origin (the provider's pages are not ours).
  page.on('request', r => {
    const from = r.frame()?.url() ?? ''
    if (from.startsWith(`${serverUrl}/`) && !r.url().startsWith(`${serverUrl}/`) &&
        !r.url().startsWith(serverUrl.replace('http', 'ws')) && !r.url().startsWith(issuer) && !r.url().startsWith('data:')) {
      page.problems.push(`request to another origin from a mesh page: ${r.url()}`)
    }
  })
  pages[label] = page
  return page
}

async function shot (name) {
  shotNo++
  for (const [label, page] of Object.entries(pages)) {
    await page.screenshot({ path: join(ARTIFACTS, `${String(shotNo).padStart(2, '0')}-${name}-${label}.png`) }).catch(() => {})
  }
}

async function step (name, fn) {
  const started = Date.now()
  try {
    await fn()
    for (const [label, page] of Object.entries(pages)) {
      if (page.problems.length) throw new Error(`page ${label}: ${page.problems.splice(0).join('; ')}`)
    }
    results.push({ name, ok: true })
    log(`ok   ${name} (${Date.now() - started} ms)`)
    await shot(name)
  } catch (e) {
    results.push({ name, ok: false, error: e })
    log(`FAIL ${name}: ${e.stack ?? e}`)
    await shot(`${name}-failed`)
    throw e
  }
}

/** At the provider's development login form: any password. */
async function providerLogin (page, login) {
  await page.waitForURL(u => u.href.startsWith(`${issuer}/interaction/`), wait)
  await page.fill('input[name=login]', login)
  await page.fill('input[name=password]', 'any password')
  await page.click('button[type=submit]')
}

/** The People panel's entry of `name`, and whether it carries the verified mark. */
const person = (name) => `[data-testid=people] li:has(.name:text-is("${name}"))`
const verified = (page, name) => page.locator(`${person(name)} .verified`).count().then(n => n > 0)

async function main () {
  rmSync(ARTIFACTS, { recursive: true, force: true })
  mkdirSync(ARTIFACTS, { recursive: true })
  issuer = await startPrinting('node', [PROVIDER], 'oidc-provider listening on ')
  serverUrl = await startPrinting(SERVER_BIN, ['--listen', '127.0.0.1:0', '--data-dir', join(tmp, 'data'),
    '--oidc-issuer', issuer, '--oidc-client-id', 'mesh-test', '--oidc-client-secret', 'mesh-test-secret'],
  'mesh-server listening on ', { MESH_LOG: process.env.MESH_LOG ?? 'warn' })
  log(`provider at ${issuer}, server at ${serverUrl}`)
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  cleanups.unshift(() => browser.close())

  const ada = await newPage('ada')
  let joinLink
  await step('the-start-page-asks-to-sign-in-before-starting', async () => {
    await ada.goto(`${serverUrl}/`)
    await ada.waitForSelector('[data-testid=sign-in]', wait)
    if (!await ada.isDisabled('[data-testid=create] button[type=submit]')) throw new Error('Start works without signing in')
  })

  await step('ada-signs-in-through-the-provider-and-comes-back-signed-in', async () => {
    await ada.click('[data-testid=sign-in]')
    await providerLogin(ada, 'ada')
    await ada.waitForURL(`${serverUrl}/`, wait)
    await ada.waitForSelector('[data-testid=signed-in-as]:has-text("Ada Lovelace")', wait)
    const cookies = await ada.context().cookies(serverUrl)
    const session = cookies.find(c => c.name === 'mesh_session')
    if (!session?.httpOnly || session.sameSite !== 'Lax') throw new Error(`the session cookie is not HttpOnly and Lax: ${JSON.stringify(session)}`)
    if (await ada.evaluate(() => document.cookie.includes('mesh_session'))) throw new Error('the page can read the session cookie')
  })

  await step('ada-creates-a-room-she-hosts-under-her-verified-name', async () => {
    await ada.fill('[data-testid=create] input[name=session]', 'signed in')
    await ada.selectOption('[data-testid=create] select', 'python')
    await ada.click('[data-testid=create] button[type=submit]')
    await ada.waitForSelector('[data-testid=role]:text("host")', wait)
    await ada.waitForSelector(`${person('Ada Lovelace')} .verified`, wait)
    joinLink = await ada.inputValue('[data-testid=join-link]')
  })

  const guest = await newPage('guest')
  await step('a-guest-without-an-account-sees-ada-verified-and-itself-not', async () => {
    await guest.goto(joinLink)
    // The guest types Ada's name: it is someone else's, so the room gives it " (2)".
    await guest.fill('[data-testid=name-gate] input', 'Ada Lovelace')
    await guest.click('[data-testid=name-gate] button[type=submit]')
    await guest.waitForSelector('[data-testid=status][data-state=connected]', wait)
    await guest.waitForSelector(person('Ada Lovelace (2)'), wait)
    await guest.waitForSelector(`${person('Ada Lovelace')} .verified`, wait)
    if (await verified(guest, 'Ada Lovelace (2)')) throw new Error('the guest is shown verified')
    await guest.waitForSelector('[data-testid=unverified-note]:visible', wait)
    await ada.waitForSelector(person('Ada Lovelace (2)'), wait)
    if (await verified(ada, 'Ada Lovelace (2)')) throw new Error('the host sees the guest verified')
  })

  let invitation
  await step('ada-makes-an-invitation-for-bob-only', async () => {
    await ada.click('[data-testid=open-links]')
    await ada.waitForSelector('[data-testid=link-for]:visible', wait)
    await ada.fill('[data-testid=link-for]', 'bob@example.test')
    await ada.click('[data-testid=create-link] button[type=submit]')
    const row = ada.locator('li.fresh')
    await row.locator('[data-testid=link-only]:has-text("only bob@example.test")').waitFor(wait)
    invitation = await row.locator('[data-testid=link-url]').inputValue()
    await ada.keyboard.press('Escape')
  })

  const bob = await newPage('bob')
  await step('the-invitation-asks-for-sign-in-and-lets-bob-in-verified', async () => {
    // Without signing in, the invitation is refused, saying to sign in.
    await bob.goto(invitation)
    await bob.fill('[data-testid=name-gate] input', 'Bobby')
    await bob.click('[data-testid=name-gate] button[type=submit]')
    await bob.waitForSelector('[data-testid=ended-message]:has-text("sign in")', wait)
    await bob.click('[data-testid=ended] [data-testid=sign-in]')
    await providerLogin(bob, 'bob')
    await bob.waitForURL(u => u.href.startsWith(`${serverUrl}/join/`), wait)
    await bob.waitForSelector('[data-testid=status][data-state=connected]', wait)
    await bob.waitForSelector(`${person('Bob Builder')} .verified`, wait)
    await ada.waitForSelector(`${person('Bob Builder')} .verified`, wait)
    await guest.waitForSelector(`${person('Bob Builder')} .verified`, wait)
  })
}

let failed = false
try {
  await main()
} catch (e) {
  failed = true
  if (results.every(r => r.ok)) log(`FAIL setup: ${e.stack ?? e}`)
} finally {
  for (const c of cleanups.reverse()) await Promise.resolve().then(c).catch(e => log(`cleanup: ${e.message}`))
  rmSync(tmp, { recursive: true, force: true })
}
const passed = results.filter(r => r.ok).length
const failedCount = results.length - passed + (failed && results.every(r => r.ok) ? 1 : 0)
console.log(`browser accounts e2e: ${passed} passed, ${failedCount} failed`)
process.exit(failedCount ? 1 : 0)
