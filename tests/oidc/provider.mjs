// A real OpenID Connect provider for mesh's sign-in tests: the certified npm package
// `oidc-provider`, on loopback, with one static confidential client, the development
// interactions (a login form that takes any login and password) and the device flow.
//
//   node tests/oidc/provider.mjs            listens on a free port of 127.0.0.1
//   OIDC_PORT=9000 node tests/oidc/provider.mjs
//
// Prints one line, `oidc-provider listening on http://127.0.0.1:PORT`, then serves until
// killed. The client is `mesh-test` with secret `mesh-test-secret` (OIDC_CLIENT_ID and
// OIDC_CLIENT_SECRET override them). Its redirect URI is http://127.0.0.1/auth/callback on
// any port: the client is registered as a native application, for which the provider
// ignores a loopback redirect's port (RFC 8252), so a mesh-server on an ephemeral port can
// use it.
//
// Accounts: whoever logs in as `ada` is "Ada Lovelace", `bob` is "Bob Builder"; any other
// login has no `name` (so mesh falls back to `preferred_username`, the login). Everyone's
// email is LOGIN@example.test.
//
// Tests make the token endpoint answer with a spoiled ID token to prove mesh refuses it:
// `POST /__mesh_test/mode` with `{"mode": M}`, M one of `forged` (signed by another key),
// `expired`, `wrong_audience`, `wrong_issuer`, `wrong_nonce`, `alg_none`, or `null` to stop.
// Everything else is the provider as shipped.
import { createServer } from 'node:http'
import Provider, { interactionPolicy } from 'oidc-provider'
import * as jose from 'jose'

const CLIENT_ID = process.env.OIDC_CLIENT_ID || 'mesh-test'
const CLIENT_SECRET = process.env.OIDC_CLIENT_SECRET || 'mesh-test-secret'
const PORT = Number(process.env.OIDC_PORT || 0)
const NAMES = { ada: 'Ada Lovelace', bob: 'Bob Builder' }
const MODES = new Set(['forged', 'expired', 'wrong_audience', 'wrong_issuer', 'wrong_nonce', 'alg_none'])

// The provider's signing key, made at each start: the tests need it to sign "expired" and
// "wrong audience" tokens that carry a valid signature, so only the claim can fail them.
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true })
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: 'mesh-test-key', alg: 'RS256', use: 'sig' }
// Another key under the same key id: what a forger would sign with.
const { privateKey: forgerKey } = await jose.generateKeyPair('RS256')

// A page with no request to any other origin (the shipped pages load a web font).
const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>`

let mode = null

// The provider asks a native client's user to consent every time; the client here stands
// for the organisation's own tool (registered as native only for its loopback redirect), so
// that prompt goes, as the grant below does for the first one.
const policy = interactionPolicy.base()
policy.get('consent').checks.remove('native_client_prompt')

const server = createServer()
await new Promise((resolve) => server.listen(PORT, '127.0.0.1', resolve))
const issuer = `http://127.0.0.1:${server.address().port}`

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/auth/callback'],
    grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingJwk] },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email', 'email_verified'] },
  async findAccount (_ctx, id) {
    return {
      accountId: id,
      async claims () {
        return { sub: id, ...(NAMES[id] ? { name: NAMES[id] } : {}), preferred_username: id, email: `${id}@example.test`, email_verified: true }
      },
    }
  },
  interactions: { policy },
  // mesh sends PKCE on every browser sign-in: require it, so a test proves it.
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: {
      enabled: true,
      userCodeInputSource: async (ctx, form) => { ctx.body = page('Sign-in', `${form}<button type="submit" form="op.deviceInputForm">Continue</button>`) },
      userCodeConfirmSource: async (ctx, form, _client, _info, code) => { ctx.body = page('Confirm device', `<p>Code <code>${code}</code></p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button>`) },
      successSource: async (ctx) => { ctx.body = page('Sign-in Success', '<p>You can go back to your device.</p>') },
    },
  },
  // A first-party client: the person is not asked to consent (what organisations configure
  // for their own tools), so a sign-in is the login form and nothing else.
  async loadExistingGrant (ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId)
    if (grantId) return ctx.oidc.provider.Grant.find(grantId)
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId })
    grant.addOIDCScope('openid profile email')
    await grant.save()
    return grant
  },
})

async function spoil (idToken) {
  const claims = jose.decodeJwt(idToken)
  const now = Math.floor(Date.now() / 1000)
  const sign = (c, key = privateKey) => new jose.SignJWT(c).setProtectedHeader({ alg: 'RS256', kid: signingJwk.kid }).sign(key)
  switch (mode) {
    case 'forged': return sign(claims, forgerKey)
    case 'expired': return sign({ ...claims, iat: now - 7200, exp: now - 3600 })
    case 'wrong_audience': return sign({ ...claims, aud: 'another-client' })
    case 'wrong_issuer': return sign({ ...claims, iss: 'http://127.0.0.1:1' })
    case 'wrong_nonce': return sign({ ...claims, nonce: 'not-the-nonce-mesh-sent' })
    case 'alg_none': return new jose.UnsecuredJWT(claims).encode()
    default: return idToken
  }
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/__mesh_test/mode' && ctx.method === 'POST') {
    let body = ''
    for await (const chunk of ctx.req) body += chunk
    const wanted = JSON.parse(body || '{}').mode ?? null
    if (wanted !== null && !MODES.has(wanted)) {
      ctx.status = 400
      ctx.body = { error: `unknown mode ${wanted}` }
      return
    }
    mode = wanted
    ctx.status = 204
    return
  }
  await next()
  if (mode && ctx.path === '/token' && ctx.body && typeof ctx.body.id_token === 'string') {
    ctx.body = { ...ctx.body, id_token: await spoil(ctx.body.id_token) }
  }
})

server.on('request', provider.callback())
console.log(`oidc-provider listening on ${issuer}`)
