// The official atproto OAuth client for Node.js (@atproto/oauth-client-node)
// signs in to a pdslog server as a loopback (development) client: handle
// resolution through the PDS, the DID document from the PLC directory,
// discovery, PAR with DPoP (the server's nonce), the sign-in and consent
// pages driven over plain HTTP as a browser without JavaScript would, the
// callback and code exchange, calls with the DPoP-bound token, a forced
// refresh, and sign-out (revocation). Each step prints one JSON line
// {"step", "ok", "details"|"error"}; the Go test (tsclient.go) checks them.
//
// Environment: PDSLOG_PDS_URL (http://localhost:PORT), PDSLOG_PLC_URL,
// PDSLOG_HANDLE, PDSLOG_PASSWORD, PDSLOG_CALLBACK (http://127.0.0.1:PORT/callback).
import { NodeOAuthClient } from '@atproto/oauth-client-node'
import { atprotoLoopbackClientMetadata } from '@atproto/oauth-types'

const env = (k) => {
  const v = process.env[k]
  if (!v) throw new Error(`${k} is not set`)
  return v
}
const pds = env('PDSLOG_PDS_URL')
const handle = env('PDSLOG_HANDLE')
const password = env('PDSLOG_PASSWORD')
const callback = env('PDSLOG_CALLBACK')

let failed = false
async function step(name, fn) {
  if (failed) return undefined
  try {
    const details = await fn()
    console.log(JSON.stringify({ step: name, ok: true, details: details ?? null }))
    return details
  } catch (err) {
    failed = true
    console.log(JSON.stringify({ step: name, ok: false, error: String(err?.stack ?? err) }))
    return undefined
  }
}
const check = (cond, msg) => {
  if (!cond) throw new Error(msg)
}

const memory = () => {
  const m = new Map()
  return { set: async (k, v) => void m.set(k, v), get: async (k) => m.get(k), del: async (k) => void m.delete(k) }
}

const scope = 'atproto transition:generic'
const clientId = `http://localhost?${new URLSearchParams({ redirect_uri: callback, scope })}`
const client = new NodeOAuthClient({
  clientMetadata: atprotoLoopbackClientMetadata(clientId),
  stateStore: memory(),
  sessionStore: memory(),
  handleResolver: pds,
  plcDirectoryUrl: env('PDSLOG_PLC_URL'),
  allowHttp: true,
  requestLock: async (_name, fn) => fn(),
})

// A cookie-keeping, non-redirecting fetch for the pages.
const cookies = new Map()
async function page(url, init = {}) {
  const headers = new Headers(init.headers)
  if (cookies.size) headers.set('cookie', [...cookies].map(([k, v]) => `${k}=${v}`).join('; '))
  const res = await fetch(url, { ...init, headers, redirect: 'manual' })
  for (const c of res.headers.getSetCookie()) {
    const [kv] = c.split(';')
    const i = kv.indexOf('=')
    cookies.set(kv.slice(0, i), kv.slice(i + 1))
  }
  return { status: res.status, location: res.headers.get('location'), body: await res.text(), url }
}
// The hidden and prefilled inputs of the form posting to action.
function form(p, action) {
  const at = p.body.indexOf(`action="${action}"`)
  check(at >= 0, `no form to ${action} on ${p.url} (${p.status}): ${p.body.slice(0, 400)}`)
  const end = p.body.indexOf('</form>', at)
  const fields = new URLSearchParams()
  for (const m of p.body.slice(at, end).matchAll(/<input[^>]*>/g)) {
    const name = /name="([^"]*)"/.exec(m[0])?.[1]
    const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? ''
    const type = /type="([^"]*)"/.exec(m[0])?.[1]
    if (name && (type !== 'checkbox' || /\bchecked\b/.test(m[0]))) fields.set(name, value.replaceAll('&amp;', '&').replaceAll('&#43;', '+').replaceAll('&#34;', '"'))
  }
  return fields
}
const post = (url, fields) =>
  page(url, { method: 'POST', body: fields.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(url).origin } })

const authorizeURL = await step('authorize', async () => {
  const url = await client.authorize(handle, { scope })
  check(url.href.startsWith(`${pds}/oauth/authorize?`), `authorize URL ${url}`)
  check(url.searchParams.get('request_uri')?.startsWith('urn:ietf:params:oauth:request_uri:'), 'no request_uri')
  return url.href
})

const params = await step('pages', async () => {
  const signIn = await page(authorizeURL)
  check(signIn.status === 200 && signIn.body.includes('name="password"'), `sign-in page ${signIn.status}`)
  const f = form(signIn, '/oauth/authorize/sign-in')
  check(f.get('identifier') === handle, `login_hint not prefilled: ${f.get('identifier')}`)
  f.set('password', password)
  f.set('action', 'sign-in')
  const signedIn = await post(new URL('/oauth/authorize/sign-in', pds).href, f)
  check(signedIn.status === 303, `sign-in answered ${signedIn.status}: ${signedIn.body.slice(0, 300)}`)
  const consent = await page(new URL(signedIn.location, pds).href)
  check(consent.status === 200 && consent.body.includes('Allow access'), `consent page ${consent.status}`)
  check(consent.body.includes('An application on your device'), 'a loopback client is not shown as an application on the device')
  const c = form(consent, '/oauth/authorize/consent')
  c.set('decision', 'allow')
  const back = await post(new URL('/oauth/authorize/consent', pds).href, c)
  check(back.status === 303 && back.location.startsWith(callback), `consent answered ${back.status} ${back.location}`)
  return Object.fromEntries(new URL(back.location).searchParams)
})

const session = await step('callback', async () => {
  const { session } = await client.callback(new URLSearchParams(params))
  check(session.did.startsWith('did:plc:'), `session did ${session.did}`)
  const info = await session.getTokenInfo(false)
  check(info.scope === scope, `granted scope ${info.scope}`)
  check(info.iss === pds, `issuer ${info.iss}`)
  return { did: session.did, scope: info.scope, expiresAt: info.expiresAt }
}).then(async (d) => (d ? client.restore(d.did, false) : undefined))

const xrpc = async (method, nsid, body) => {
  const res = await session.fetchHandler(`/xrpc/${nsid}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  })
  const json = await res.json().catch(() => null)
  return { status: res.status, json, wwwAuth: res.headers.get('www-authenticate') }
}
const postRecord = (text) =>
  xrpc('POST', 'com.atproto.repo.createRecord', {
    repo: session.did,
    collection: 'app.bsky.feed.post',
    record: { $type: 'app.bsky.feed.post', text, createdAt: new Date().toISOString() },
  })

const uris = []
await step('createRecord', async () => {
  const r = await postRecord('hello from @atproto/oauth-client-node')
  check(r.status === 200 && r.json?.uri?.startsWith(`at://${session.did}/`), `createRecord ${r.status} ${JSON.stringify(r.json)}`)
  uris.push(r.json.uri)
  return r.json
})

await step('getSession', async () => {
  const r = await xrpc('GET', 'com.atproto.server.getSession')
  check(r.status === 200 && r.json.did === session.did && r.json.handle === handle, `getSession ${r.status} ${JSON.stringify(r.json)}`)
  check(r.json.email === undefined, 'the email is shown without transition:email')
  return r.json
})

await step('scopeRefused', async () => {
  const r = await xrpc('POST', 'com.atproto.server.createAppPassword', { name: 'nope' })
  check(r.status === 403, `createAppPassword over OAuth answered ${r.status}`)
  return r.json
})

await step('refresh', async () => {
  const before = await session.getTokenInfo(false)
  const after = await session.getTokenInfo(true)
  check(after.expiresAt && before.expiresAt && after.expiresAt >= before.expiresAt, 'refresh did not renew the token')
  const r = await postRecord('after a forced refresh')
  check(r.status === 200, `createRecord after refresh ${r.status} ${JSON.stringify(r.json)}`)
  uris.push(r.json.uri)
  return { expiresAt: after.expiresAt }
})

await step('signOut', async () => {
  await session.signOut()
  let restored = null
  try {
    restored = await client.restore(session.did, false)
  } catch {
    // the session is gone from the client's store
  }
  check(restored === null, 'the session survived its sign-out')
  return null
})

await step('summary', async () => ({ did: session.did, records: uris }))
process.exit(failed ? 1 : 0)
