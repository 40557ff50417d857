// client.mjs drives a PDS end to end with the official atproto TypeScript
// client, @atproto/api (pinned in package.json), the way an app does.
//
//   node client.mjs --pds http://127.0.0.1:2583 --invite CODE [--handle h.test]
//                   [--email e@example.com] [--password pw] [--jwt-secret s]
//
// (or PDSLOG_PDS_URL, PDSLOG_INVITE_CODE, PDSLOG_HANDLE, PDSLOG_EMAIL,
// PDSLOG_PASSWORD, PDSLOG_JWT_SECRET; with the server's JWT secret it also
// checks the client's refresh on an expired token). It prints one JSON line
// per step on stdout:
//
//   {"step":"getRecord","ok":true,"details":{...}}
//
// and stops at the first failing step ({"ok":false,"error":{...}}, exit 1).
// Anything the library prints on the console (console.warn, console.error,
// console.log, ...) or a process warning fails the step it happened in: the
// console is captured before the library is loaded. So does any request a
// browser would block under CORS (see browserFetch). The last step,
// "summary", lists what the account's repo should hold, for the caller to
// check against the server.

import { createHmac } from 'node:crypto'

const printed = []
for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir']) {
  console[method] = (...args) => {
    printed.push({ method, text: args.map((a) => (a instanceof Error ? a.stack : String(a))).join(' ') })
  }
}
process.on('warning', (w) => {
  printed.push({ method: 'process.warning', text: `${w.name}: ${w.message}` })
})

// Every request the library makes goes through browserFetch, which checks it
// the way a browser would for a web app on another origin: a CORS preflight
// where the Fetch standard needs one, and the CORS headers of the answer.
// What a browser would block is recorded and fails the step.
const nodeFetch = globalThis.fetch
const appOrigin = 'https://app.example'
const corsBlocked = []
const safelistedMethods = ['GET', 'HEAD', 'POST']
const safelistedContentTypes = ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']

function unsafeHeaders(headers) {
  const names = []
  for (const [name, value] of headers) {
    if (['accept', 'accept-language', 'content-language'].includes(name)) continue
    if (name === 'content-type' && safelistedContentTypes.includes(value.split(';')[0].trim().toLowerCase())) continue
    names.push(name)
  }
  return names.sort()
}

function listed(value, item) {
  return (value ?? '').split(',').map((v) => v.trim().toLowerCase()).includes(item)
}

function originAllowed(res) {
  const v = res.headers.get('access-control-allow-origin')
  return v === '*' || v === appOrigin
}

async function browserFetch(input, init) {
  const req = new Request(input, init)
  const where = `${req.method} ${new URL(req.url).pathname}`
  const unsafe = unsafeHeaders(req.headers)
  if (!safelistedMethods.includes(req.method) || unsafe.length > 0) {
    const pre = await nodeFetch(req.url, {
      method: 'OPTIONS',
      headers: { origin: appOrigin, 'access-control-request-method': req.method, 'access-control-request-headers': unsafe.join(',') },
    })
    await pre.arrayBuffer()
    const allowHeaders = pre.headers.get('access-control-allow-headers')
    const allowMethods = pre.headers.get('access-control-allow-methods')
    const problems = []
    if (!pre.ok) problems.push(`preflight answered ${pre.status}`)
    if (!originAllowed(pre)) problems.push(`preflight Access-Control-Allow-Origin ${pre.headers.get('access-control-allow-origin')}`)
    if (!safelistedMethods.includes(req.method) && !listed(allowMethods, req.method.toLowerCase()) && allowMethods !== '*') {
      problems.push(`method ${req.method} not in Access-Control-Allow-Methods ${allowMethods}`)
    }
    for (const h of unsafe) {
      // "*" allows any header except Authorization, which must be listed.
      if (!listed(allowHeaders, h) && !(listed(allowHeaders, '*') && h !== 'authorization')) {
        problems.push(`header ${h} not allowed by Access-Control-Allow-Headers ${allowHeaders}`)
      }
    }
    if (problems.length > 0) corsBlocked.push({ request: where, problems })
  }
  const headers = new Headers(req.headers)
  headers.set('origin', appOrigin)
  const res = await nodeFetch(new Request(req, { headers }))
  if (!originAllowed(res)) {
    corsBlocked.push({ request: where, problems: [`response Access-Control-Allow-Origin ${res.headers.get('access-control-allow-origin')}`] })
  }
  return res
}
globalThis.fetch = browserFetch

const api = await import('@atproto/api')
const {
  AtpAgent,
  Agent,
  AtUri,
  XRPCError,
  ComAtprotoServerCreateAccount,
  ComAtprotoRepoGetRecord,
  ComAtprotoRepoPutRecord,
  ComAtprotoRepoDeleteRecord,
  ComAtprotoRepoApplyWrites,
  ComAtprotoServerRefreshSession,
  ComAtprotoIdentityResolveHandle,
  ComAtprotoServerCreateSession,
  ComAtprotoServerConfirmEmail,
  ComAtprotoServerResetPassword,
  RichText,
} = api

// ---- arguments ----

function arg(name, env) {
  const i = process.argv.indexOf(`--${name}`)
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]
  return process.env[env] || undefined
}

const rand = Math.random().toString(36).slice(2, 10)
const pds = arg('pds', 'PDSLOG_PDS_URL')
const invite = arg('invite', 'PDSLOG_INVITE_CODE')
const handle = arg('handle', 'PDSLOG_HANDLE') ?? `js-${rand}.test`
const email = arg('email', 'PDSLOG_EMAIL') ?? `js-${rand}@example.com`
const password = arg('password', 'PDSLOG_PASSWORD') ?? `pw-${rand}-${rand}`
// The server's JWT secret (its --jwt-secret), if known, lets the script
// make an expired access token to exercise the client's refresh-and-retry.
const jwtSecret = arg('jwt-secret', 'PDSLOG_JWT_SECRET')
// An inbox (GET ?to=ADDR&subject=TEXT answers the next message to ADDR as
// {subject,text,html}), if the server mails through a test SMTP server: the
// script then walks the emailed-code flows the Bluesky app uses.
const inbox = arg('inbox', 'PDSLOG_MAIL_INBOX')
// A handle hosted on another server and its DID, if given: the script then
// posts a mention of it, the facet found the way the Bluesky app finds it
// (RichText.detectFacets, which resolves the handle through this PDS).
const mentionHandle = arg('mention-handle', 'PDSLOG_MENTION_HANDLE')
const mentionDid = arg('mention-did', 'PDSLOG_MENTION_DID')

// ---- step machinery ----

class StepFailure extends Error {
  constructor(message, extra) {
    super(message)
    this.extra = extra
  }
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function describe(err) {
  if (err instanceof StepFailure) return { message: err.message, ...err.extra }
  if (err instanceof XRPCError) {
    return { message: err.message, class: err.constructor.name, status: err.status, error: err.error }
  }
  return { message: String(err?.message ?? err), class: err?.constructor?.name, stack: err?.stack }
}

let failed = false

async function step(name, fn) {
  if (failed) return undefined
  let details
  try {
    details = (await fn()) ?? {}
  } catch (err) {
    failed = true
    emit({ step: name, ok: false, error: describe(err), printed: printed.splice(0) })
    return undefined
  }
  if (corsBlocked.length > 0) {
    failed = true
    emit({ step: name, ok: false, error: { message: 'a browser would have blocked requests (CORS)', blocked: corsBlocked.splice(0) } })
    return undefined
  }
  if (printed.length > 0) {
    failed = true
    emit({ step: name, ok: false, error: { message: 'the library printed on the console' }, printed: printed.splice(0) })
    return undefined
  }
  emit({ step: name, ok: true, details })
  return details
}

function check(cond, message, extra) {
  if (!cond) throw new StepFailure(message, extra === undefined ? undefined : { got: extra })
}

// rejects runs promise and requires it to fail with an XRPCError of the
// given status and error name (and, if cls is set, the generated client's
// typed error class for it).
async function rejects(promise, { status, error, cls }) {
  let res
  try {
    res = await promise
  } catch (err) {
    const got = describe(err)
    check(err instanceof XRPCError, `want an XRPCError, got ${err?.constructor?.name}`, got)
    check(err.status === status && err.error === error, `want ${status} ${error}`, got)
    if (cls) check(err instanceof cls, `want the client's ${cls.name}`, got)
    return { status: err.status, error: err.error, class: err.constructor.name, message: err.message }
  }
  throw new StepFailure(`want ${status} ${error}, the call succeeded`, { got: res?.data ?? res })
}

// newAgent returns an AtpAgent for the PDS whose persistSession callback
// records each session event.
function newAgent() {
  const events = []
  const agent = new AtpAgent({
    service: pds,
    persistSession: (evt, sess) => events.push({ evt, accessJwt: sess?.accessJwt, refreshJwt: sess?.refreshJwt }),
  })
  return { agent, events }
}

const postColl = 'app.bsky.feed.post'
const profileColl = 'app.bsky.actor.profile'
const rkeyOf = (uri) => new AtUri(uri).rkey
const isTID = (s) => /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/.test(s)
// Record keys the script picks itself (posts must have TID keys); they sort
// before the TIDs the client makes now.
const explicitRkey = '3jzfcijpj2z2a'
const batchRkey = '3jzfcijpj2z2b'
const isCID = (s) => typeof s === 'string' && /^b[a-z2-7]{50,}$/.test(s)

// expiredCopy re-signs an HS256 access token with iat and exp moved into
// the past: the token the server issued, only expired an hour ago.
function expiredCopy(jwt, secret) {
  const [header, payload] = jwt.split('.')
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
  const now = Math.floor(Date.now() / 1000)
  claims.iat = now - 3 * 3600
  claims.exp = now - 3600
  const body = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`
}

// ---- the run ----

async function main() {
  if (!pds || !invite) {
    emit({ step: 'args', ok: false, error: { message: 'usage: node client.mjs --pds URL --invite CODE [--handle H] [--email E] [--password P]' } })
    process.exitCode = 2
    return
  }
  const anon = new AtpAgent({ service: pds })
  const { agent, events } = newAgent()
  let did
  const live = new Map() // uri -> cid: records that should be in the repo at the end
  const deleted = [] // uris deleted on the way

  await step('describeServer', async () => {
    const { data } = await anon.com.atproto.server.describeServer()
    check(data.did?.startsWith('did:'), 'describeServer.did is not a DID', data)
    check(data.availableUserDomains.includes('.' + handle.split('.').slice(1).join('.')), 'handle domain not offered', data)
    check(data.inviteCodeRequired === true, 'inviteCodeRequired should be true', data)
    return { did: data.did, availableUserDomains: data.availableUserDomains }
  })

  await step('createAccount.invalidHandle', async () => {
    const res = await rejects(agent.createAccount({ handle: 'no_underscores.test', email, password, inviteCode: invite }),
      { status: 400, error: 'InvalidHandle', cls: ComAtprotoServerCreateAccount.InvalidHandleError })
    check(!agent.hasSession, 'a failed signup left a session')
    check(events.at(-1)?.evt === 'create-failed', 'persistSession did not see create-failed', events)
    return res
  })

  await step('createAccount.unsupportedDomain', async () =>
    rejects(agent.createAccount({ handle: `js-${rand}.example.com`, email, password, inviteCode: invite }),
      { status: 400, error: 'UnsupportedDomain', cls: ComAtprotoServerCreateAccount.UnsupportedDomainError }))

  await step('createAccount.invalidInviteCode', async () =>
    rejects(agent.createAccount({ handle, email, password, inviteCode: 'not-an-invite-code' }),
      { status: 400, error: 'InvalidInviteCode', cls: ComAtprotoServerCreateAccount.InvalidInviteCodeError }))

  await step('createAccount', async () => {
    const { data } = await agent.createAccount({ handle, email, password, inviteCode: invite })
    did = data.did
    check(did.startsWith('did:plc:'), 'not a did:plc', data)
    check(data.handle === handle, 'handle differs', data)
    check(typeof data.accessJwt === 'string' && typeof data.refreshJwt === 'string', 'no tokens', data)
    check(agent.hasSession && agent.session.did === did, 'the agent holds no session')
    check(events.at(-1)?.evt === 'create', 'persistSession did not see create', events)
    return { did, handle: data.handle }
  })

  await step('getSession', async () => {
    const { data } = await agent.com.atproto.server.getSession()
    check(data.did === did && data.handle === handle && data.email === email, 'getSession differs', data)
    check(data.active !== false, 'account not active', data)
    return { did: data.did, handle: data.handle, email: data.email, active: data.active }
  })

  await step('login.handle', async () => {
    const { agent: a } = newAgent()
    const { data } = await a.login({ identifier: handle, password })
    check(data.did === did && data.handle === handle && a.session?.did === did, 'login by handle', data)
    const { data: s } = await a.com.atproto.server.getSession()
    check(s.did === did, 'getSession after login', s)
    return { did: data.did }
  })

  const byEmail = newAgent()
  await step('login.email', async () => {
    const { data } = await byEmail.agent.login({ identifier: email, password })
    check(data.did === did && data.email === email, 'login by email', data)
    check(byEmail.events.at(-1)?.evt === 'create', 'persistSession did not see create', byEmail.events)
    return { did: data.did }
  })

  await step('login.wrongPassword', async () => {
    const { agent: a } = newAgent()
    return rejects(a.login({ identifier: handle, password: password + 'x' }), { status: 401, error: 'AuthenticationRequired' })
  })

  await step('post', async () => {
    const posts = []
    for (let i = 0; i < 5; i++) {
      const res = await agent.post({ text: `post ${i} from @atproto/api`, createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() })
      check(res.uri.startsWith(`at://${did}/${postColl}/`) && isTID(rkeyOf(res.uri)), 'bad post uri', res)
      check(isCID(res.cid), 'bad post cid', res)
      live.set(res.uri, res.cid)
      posts.push(res.uri)
    }
    return { uris: posts }
  })

  if (mentionHandle) {
    await step('post.mention', async () => {
      const rt = new RichText({ text: `hello @${mentionHandle} from @atproto/api` })
      await rt.detectFacets(agent)
      const features = (rt.facets ?? []).flatMap((f) => f.features)
      check(features.length === 1 && features[0].$type === 'app.bsky.richtext.facet#mention' && features[0].did === mentionDid,
        'mention facet', { facets: rt.facets })
      const res = await agent.post({ text: rt.text, facets: rt.facets, createdAt: new Date().toISOString() })
      live.set(res.uri, res.cid)
      const { data } = await agent.com.atproto.repo.getRecord({ repo: did, collection: postColl, rkey: rkeyOf(res.uri) })
      const facet = data.value.facets?.[0]
      check(facet?.features?.[0]?.did === mentionDid, 'stored facet', data.value)
      const bytes = new TextEncoder().encode(data.value.text)
      const covered = new TextDecoder().decode(bytes.slice(facet.index.byteStart, facet.index.byteEnd))
      check(covered === `@${mentionHandle}`, 'facet byte range', { covered })
      return { uri: res.uri, facets: data.value.facets }
    })
  }

  await step('createRecord', async () => {
    const { data } = await agent.com.atproto.repo.createRecord({
      repo: did,
      collection: postColl,
      rkey: explicitRkey,
      validate: true,
      record: { $type: postColl, text: 'created with com.atproto.repo.createRecord', createdAt: new Date().toISOString() },
    })
    check(data.uri === `at://${did}/${postColl}/${explicitRkey}`, 'uri', data)
    check(isCID(data.cid) && isCID(data.commit?.cid) && isTID(data.commit?.rev), 'cid/commit', data)
    check(data.validationStatus === 'valid', 'validationStatus', data)
    live.set(data.uri, data.cid)
    return data
  })

  let profileCid
  await step('putRecord.profile', async () => {
    // upsertProfile reads the profile (missing: RecordNotFound), then puts it
    // with swapRecord null ("must not exist yet"); the second call swaps on
    // the first one's CID.
    await agent.upsertProfile((existing) => {
      check(existing === undefined, 'a profile existed already', existing)
      return { displayName: 'JS Client' }
    })
    await agent.upsertProfile((existing) => {
      check(existing?.displayName === 'JS Client', 'upsertProfile did not read the first version', existing)
      return { ...existing, description: 'written by @atproto/api' }
    })
    const { data } = await agent.com.atproto.repo.putRecord({
      repo: did,
      collection: profileColl,
      rkey: 'self',
      record: { $type: profileColl, displayName: 'JS Client', description: 'written by @atproto/api (putRecord)' },
    })
    check(data.uri === `at://${did}/${profileColl}/self` && isCID(data.cid), 'putRecord output', data)
    check(data.validationStatus === 'valid' && isTID(data.commit?.rev), 'putRecord output', data)
    profileCid = data.cid
    live.set(data.uri, data.cid)
    return data
  })

  await step('getRecord', async () => {
    const [uri, cid] = [...live].find(([u]) => u.endsWith(`/${explicitRkey}`))
    const { data } = await agent.com.atproto.repo.getRecord({ repo: did, collection: postColl, rkey: explicitRkey })
    check(data.uri === uri && data.cid === cid, 'uri/cid', data)
    check(data.value.text === 'created with com.atproto.repo.createRecord' && data.value.$type === postColl, 'value', data)
    const withCid = await agent.com.atproto.repo.getRecord({ repo: handle, collection: postColl, rkey: explicitRkey, cid })
    check(withCid.data.cid === cid, 'getRecord by handle and cid', withCid.data)
    const prof = await agent.app.bsky.actor.profile.get({ repo: did, rkey: 'self' })
    check(prof.cid === profileCid && prof.value.description === 'written by @atproto/api (putRecord)', 'profile', prof)
    return { uri: data.uri, cid: data.cid }
  })

  await step('listRecords', async () => {
    const want = [...live.keys()].filter((u) => u.includes(`/${postColl}/`))
    const pages = []
    const seen = []
    let cursor
    for (let i = 0; i < 10; i++) {
      const { data } = await agent.com.atproto.repo.listRecords({ repo: did, collection: postColl, limit: 2, cursor })
      check(data.records.length <= 2, 'page over the limit', data)
      pages.push(data.records.length)
      for (const r of data.records) {
        check(live.get(r.uri) === r.cid && r.value.$type === postColl, 'listed record differs', r)
        seen.push(r.uri)
      }
      cursor = data.cursor
      if (!cursor) break
    }
    check(!cursor, 'pagination did not end', { pages })
    check(seen.length === want.length && new Set(seen).size === want.length, 'pages do not cover the collection once', { seen, want })
    const rkeys = seen.map(rkeyOf)
    check(rkeys.every((k, i) => i === 0 || rkeys[i - 1] > k), 'default order is not newest (highest rkey) first', rkeys)
    const rev = await agent.com.atproto.repo.listRecords({ repo: did, collection: postColl, limit: 100, reverse: true })
    const revKeys = rev.data.records.map((r) => rkeyOf(r.uri))
    check(JSON.stringify(revKeys) === JSON.stringify([...rkeys].reverse()), 'reverse is not the default order reversed', revKeys)
    // a reverse page and its cursor
    const p1 = await agent.app.bsky.feed.post.list({ repo: did, limit: 3, reverse: true })
    const p2 = await agent.app.bsky.feed.post.list({ repo: did, limit: 3, reverse: true, cursor: p1.cursor })
    const joined = [...p1.records, ...p2.records].map((r) => rkeyOf(r.uri))
    check(JSON.stringify(joined) === JSON.stringify(revKeys.slice(0, joined.length)) && joined.length === Math.min(6, revKeys.length),
      'reverse pagination', { joined, revKeys })
    const empty = await agent.com.atproto.repo.listRecords({ repo: did, collection: 'app.bsky.feed.like' })
    check(empty.data.records.length === 0 && !empty.data.cursor, 'empty collection', empty.data)
    return { pages, order: rkeys }
  })

  await step('applyWrites', async () => {
    const victim = [...live.keys()].find((u) => u.includes(`/${postColl}/`) && !u.endsWith(`/${explicitRkey}`))
    const { data } = await agent.com.atproto.repo.applyWrites({
      repo: did,
      validate: true,
      writes: [
        { $type: 'com.atproto.repo.applyWrites#create', collection: postColl, rkey: batchRkey,
          value: { $type: postColl, text: 'batch create 1', createdAt: new Date().toISOString() } },
        { $type: 'com.atproto.repo.applyWrites#create', collection: postColl,
          value: { $type: postColl, text: 'batch create 2', createdAt: new Date().toISOString() } },
        { $type: 'com.atproto.repo.applyWrites#update', collection: profileColl, rkey: 'self',
          value: { $type: profileColl, displayName: 'JS Client (batch)' } },
        { $type: 'com.atproto.repo.applyWrites#delete', collection: postColl, rkey: rkeyOf(victim) },
      ],
    })
    check(isCID(data.commit?.cid) && isTID(data.commit?.rev), 'commit', data)
    const types = data.results.map((r) => r.$type)
    check(JSON.stringify(types) === JSON.stringify([
      'com.atproto.repo.applyWrites#createResult', 'com.atproto.repo.applyWrites#createResult',
      'com.atproto.repo.applyWrites#updateResult', 'com.atproto.repo.applyWrites#deleteResult']), 'result types', data.results)
    const [c1, c2, u] = data.results
    check(c1.uri === `at://${did}/${postColl}/${batchRkey}` && isCID(c1.cid) && c1.validationStatus === 'valid', 'create 1', c1)
    check(isTID(rkeyOf(c2.uri)) && isCID(c2.cid), 'create 2', c2)
    check(u.uri === `at://${did}/${profileColl}/self` && isCID(u.cid) && u.cid !== profileCid, 'update', u)
    live.set(c1.uri, c1.cid)
    live.set(c2.uri, c2.cid)
    live.set(u.uri, u.cid)
    profileCid = u.cid
    live.delete(victim)
    deleted.push(victim)
    const got = await agent.com.atproto.repo.getRecord({ repo: did, collection: postColl, rkey: batchRkey })
    check(got.data.cid === c1.cid && got.data.value.text === 'batch create 1', 'batch record not readable', got.data)
    await rejects(agent.com.atproto.repo.getRecord({ repo: did, collection: postColl, rkey: rkeyOf(victim) }),
      { status: 400, error: 'RecordNotFound', cls: ComAtprotoRepoGetRecord.RecordNotFoundError })
    return { commit: data.commit, results: data.results }
  })

  await step('deleteRecord', async () => {
    const victim = [...live.keys()].find((u) => u.includes(`/${postColl}/`) && ![explicitRkey, batchRkey].includes(rkeyOf(u)))
    await agent.deletePost(victim)
    live.delete(victim)
    deleted.push(victim)
    const gone = await rejects(agent.com.atproto.repo.getRecord({ repo: did, collection: postColl, rkey: rkeyOf(victim) }),
      { status: 400, error: 'RecordNotFound', cls: ComAtprotoRepoGetRecord.RecordNotFoundError })
    // deleting a record that is not there is not an error (lexicon: no-op)
    const { data } = await agent.com.atproto.repo.deleteRecord({ repo: did, collection: postColl, rkey: rkeyOf(victim) })
    return { uri: victim, getAfter: gone, deleteAgain: data }
  })

  await step('error.recordNotFound', async () =>
    rejects(agent.com.atproto.repo.getRecord({ repo: did, collection: postColl, rkey: '3zzzzzzzzzzzz' }),
      { status: 400, error: 'RecordNotFound', cls: ComAtprotoRepoGetRecord.RecordNotFoundError }))

  await step('error.invalidSwap', async () => {
    const staleProfile = await rejects(agent.com.atproto.repo.putRecord({
      repo: did, collection: profileColl, rkey: 'self', swapRecord: 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm',
      record: { $type: profileColl, displayName: 'stale' },
    }), { status: 400, error: 'InvalidSwap', cls: ComAtprotoRepoPutRecord.InvalidSwapError })
    const mustNotExist = await rejects(agent.com.atproto.repo.putRecord({
      repo: did, collection: profileColl, rkey: 'self', swapRecord: null,
      record: { $type: profileColl, displayName: 'stale' },
    }), { status: 400, error: 'InvalidSwap', cls: ComAtprotoRepoPutRecord.InvalidSwapError })
    const staleDelete = await rejects(agent.com.atproto.repo.deleteRecord({
      repo: did, collection: postColl, rkey: explicitRkey, swapRecord: 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm',
    }), { status: 400, error: 'InvalidSwap', cls: ComAtprotoRepoDeleteRecord.InvalidSwapError })
    // a swapCommit that is not the head: the genesis commit is long gone
    const head = await agent.com.atproto.repo.createRecord({ repo: did, collection: postColl,
      record: { $type: postColl, text: 'head marker', createdAt: new Date().toISOString() } })
    live.set(head.data.uri, head.data.cid)
    await agent.com.atproto.repo.putRecord({ repo: did, collection: profileColl, rkey: 'self', swapRecord: profileCid,
      record: { $type: profileColl, displayName: 'JS Client (final)' } }).then((r) => {
      live.set(r.data.uri, r.data.cid)
      profileCid = r.data.cid
    })
    const staleCommit = await rejects(agent.com.atproto.repo.applyWrites({
      repo: did, swapCommit: head.data.commit.cid,
      writes: [{ $type: 'com.atproto.repo.applyWrites#delete', collection: postColl, rkey: explicitRkey }],
    }), { status: 400, error: 'InvalidSwap', cls: ComAtprotoRepoApplyWrites.InvalidSwapError })
    return { staleProfile, mustNotExist, staleDelete, staleCommit }
  })

  await step('error.badToken', async () => {
    const forged = new Agent({ service: pds, headers: { authorization: 'Bearer not.a.jwt' } })
    const invalid = await rejects(forged.com.atproto.server.getSession(), { status: 400, error: 'InvalidToken' })
    // no credentials at all: 401 AuthMissing, as the reference answers
    const nobody = new AtpAgent({ service: pds })
    const missing = await rejects(nobody.com.atproto.repo.createRecord({ repo: did, collection: postColl,
      record: { $type: postColl, text: 'x', createdAt: new Date().toISOString() } }), { status: 401, error: 'AuthMissing' })
    const missingRefresh = await rejects(nobody.com.atproto.server.refreshSession(), { status: 401, error: 'AuthMissing' })
    // a refresh token where an access token belongs
    const misuse = new Agent({ service: pds, headers: { authorization: `Bearer ${agent.session.refreshJwt}` } })
    const wrongKind = await rejects(misuse.com.atproto.server.getSession(), { status: 400, error: 'InvalidToken' })
    return { invalid, missing, missingRefresh, wrongKind }
  })

  await step('describeRepo', async () => {
    const { data } = await anon.com.atproto.repo.describeRepo({ repo: handle })
    check(data.did === did && data.handle === handle && data.handleIsCorrect === true, 'describeRepo', data)
    check(data.collections.includes(postColl) && data.collections.includes(profileColl), 'collections', data)
    check(data.didDoc?.id === did, 'didDoc', data)
    return { did: data.did, handle: data.handle, collections: data.collections }
  })

  await step('resolveHandle', async () => {
    const { data } = await anon.resolveHandle({ handle })
    check(data.did === did, 'resolveHandle', data)
    const missing = await rejects(anon.resolveHandle({ handle: `nobody-${rand}.test` }),
      { status: 400, error: 'HandleNotFound', cls: ComAtprotoIdentityResolveHandle.HandleNotFoundError })
    return { did: data.did, missing }
  })

  let appPassword
  await step('createAppPassword', async () => {
    const { data } = await agent.com.atproto.server.createAppPassword({ name: 'jsclient' })
    check(data.name === 'jsclient' && /^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/.test(data.password) && data.createdAt, 'createAppPassword', data)
    appPassword = data.password
    const { data: list } = await agent.com.atproto.server.listAppPasswords()
    check(list.passwords.some((p) => p.name === 'jsclient' && p.password === undefined), 'listAppPasswords', list)
    return { name: data.name, privileged: data.privileged ?? false }
  })

  await step('login.appPassword', async () => {
    const { agent: a } = newAgent()
    const { data } = await a.login({ identifier: handle, password: appPassword })
    check(data.did === did, 'login with app password', data)
    const res = await a.post({ text: 'posted with an app password', createdAt: new Date().toISOString() })
    live.set(res.uri, res.cid)
    // an app-password session may not manage app passwords
    const refused = await rejects(a.com.atproto.server.createAppPassword({ name: 'escalate' }), { status: 400, error: 'InvalidToken' })
    const { data: list } = await agent.com.atproto.server.listAppPasswords()
    check(!list.passwords.some((p) => p.name === 'escalate'), 'the refused app password exists', list)
    return { post: res.uri, refused }
  })

  await step('refreshSession', async () => {
    const before = agent.session
    const n = events.length
    await agent.sessionManager.refreshSession()
    const upd = events.slice(n)
    check(upd.length === 1 && upd[0].evt === 'update', 'persistSession did not see one update', upd)
    check(upd[0].accessJwt !== before.accessJwt && upd[0].refreshJwt !== before.refreshJwt, 'tokens not rotated', upd)
    check(agent.session.accessJwt === upd[0].accessJwt, 'agent does not use the new token')
    const { data } = await agent.com.atproto.server.getSession()
    check(data.did === did && data.handle === handle, 'getSession with the refreshed token', data)
    const res = await agent.post({ text: 'after refresh', createdAt: new Date().toISOString() })
    live.set(res.uri, res.cid)
    return { rotated: true }
  })

  if (jwtSecret) {
    await step('refreshSession.expiredToken', async () => {
      // The server answers an expired access token with 400 ExpiredToken;
      // the session manager then refreshes the session and retries the call,
      // and persistSession sees the new tokens.
      const expired = expiredCopy(agent.session.accessJwt, jwtSecret)
      const raw = new Agent({ service: pds, headers: { authorization: `Bearer ${expired}` } })
      const answer = await rejects(raw.com.atproto.server.getSession(), { status: 400, error: 'ExpiredToken' })
      const retried = []
      for (const call of [
        () => agent.com.atproto.server.getSession(),
        () => agent.post({ text: 'after an expired token', createdAt: new Date().toISOString() }),
      ]) {
        const n = events.length
        agent.sessionManager.session = { ...agent.session, accessJwt: expired }
        const res = await call()
        const upd = events.slice(n)
        check(upd.length === 1 && upd[0].evt === 'update' && upd[0].accessJwt !== expired, 'no transparent refresh', upd)
        check(agent.session.accessJwt === upd[0].accessJwt, 'agent does not use the refreshed token')
        if (res.uri) live.set(res.uri, res.cid)
        retried.push(res.uri ?? res.data.did)
      }
      check(retried[0] === did, 'getSession after refresh', retried)
      return { answer, retried }
    })
  }

  await step('deleteSession', async () => {
    const refreshJwt = byEmail.agent.session.refreshJwt
    await byEmail.agent.com.atproto.server.deleteSession(undefined, { headers: { authorization: `Bearer ${refreshJwt}` } })
    // the revoked refresh token no longer refreshes: the session manager
    // drops the session and tells persistSession it expired
    const refused = await rejects(byEmail.agent.sessionManager.refreshSession(), { status: 400, error: 'InvalidToken',
      cls: ComAtprotoServerRefreshSession.InvalidTokenError })
    check(!byEmail.agent.hasSession && byEmail.events.at(-1)?.evt === 'expired', 'session not dropped', byEmail.events)
    // logout through the agent of the main session
    await agent.logout()
    check(!agent.hasSession && events.at(-1)?.evt === 'expired', 'logout did not end the session', events)
    const after = await rejects(agent.com.atproto.server.getSession(), { status: 401, error: 'AuthMissing' })
    return { refused, after }
  })

  if (inbox) {
    // The emailed code of the next message to addr with subject.
    const mailed = async (addr, subject) => {
      const res = await nodeFetch(`${inbox}?to=${encodeURIComponent(addr)}&subject=${encodeURIComponent(subject)}`)
      check(res.ok, `no "${subject}" message to ${addr}`, res.status)
      const m = await res.json()
      const code = m.text.match(/[A-Z2-7]{5}-[A-Z2-7]{5}/)?.[0]
      check(code && m.html.includes(code), 'the code is not in both parts', m)
      return code
    }
    const { agent: mailAgent } = newAgent()
    await mailAgent.login({ identifier: handle, password })

    await step('email.confirm', async () => {
      const before = await mailAgent.com.atproto.server.getSession()
      check(before.data.emailConfirmed === false, 'confirmed before confirming', before.data)
      await mailAgent.com.atproto.server.requestEmailConfirmation()
      const code = await mailed(email, 'Email Confirmation')
      const wrong = await rejects(mailAgent.com.atproto.server.confirmEmail({ email, token: 'AAAAA-AAAAA' }),
        { status: 400, error: 'InvalidToken', cls: ComAtprotoServerConfirmEmail.InvalidTokenError })
      await mailAgent.com.atproto.server.confirmEmail({ email, token: code.toLowerCase() })
      const { data } = await mailAgent.com.atproto.server.getSession()
      check(data.emailConfirmed === true, 'not confirmed', data)
      return { wrong, emailConfirmed: data.emailConfirmed }
    })

    let newPassword = password + '-reset'
    await step('password.reset', async () => {
      await anon.com.atproto.server.requestPasswordReset({ email })
      await anon.com.atproto.server.requestPasswordReset({ email: `nobody-${rand}@example.com` }) // answers the same
      const code = await mailed(email, 'Password Reset')
      const bad = await rejects(anon.com.atproto.server.resetPassword({ token: 'AAAAA-AAAAA', password: newPassword }),
        { status: 400, error: 'InvalidToken', cls: ComAtprotoServerResetPassword.InvalidTokenError })
      await anon.com.atproto.server.resetPassword({ token: code, password: newPassword })
      // every session ended with the reset
      const ended = await rejects(mailAgent.sessionManager.refreshSession(), { status: 400, error: 'InvalidToken' })
      const old = await rejects(newAgent().agent.login({ identifier: handle, password }), { status: 401, error: 'AuthenticationRequired' })
      await mailAgent.login({ identifier: handle, password: newPassword })
      return { bad, ended, old }
    })

    await step('email.authFactor', async () => {
      const { data: req } = await mailAgent.com.atproto.server.requestEmailUpdate()
      check(req.tokenRequired === true, 'a confirmed address needs a code', req)
      const code = await mailed(email, 'Email Update')
      await mailAgent.com.atproto.server.updateEmail({ email, emailAuthFactor: true, token: code })
      const { data } = await mailAgent.com.atproto.server.getSession()
      check(data.emailAuthFactor === true, 'emailAuthFactor not on', data)
      return { emailAuthFactor: data.emailAuthFactor }
    })

    await step('login.authFactor', async () => {
      const { agent: a } = newAgent()
      const required = await rejects(a.login({ identifier: handle, password: newPassword }),
        { status: 401, error: 'AuthFactorTokenRequired', cls: ComAtprotoServerCreateSession.AuthFactorTokenRequiredError })
      const code = await mailed(email, 'Sign-in Code')
      const { data } = await a.login({ identifier: handle, password: newPassword, authFactorToken: code })
      check(data.did === did && a.hasSession, 'login with the code', data)
      return { required }
    })
  }

  await step('summary', async () => {
    check(printed.length === 0, 'the library printed on the console')
    return { did, handle, records: Object.fromEntries(live), deleted }
  })

  if (failed) process.exitCode = 1
}

await main()
