// The read methods served from the mirror, each answering exactly as its
// pdslog handler (named in its comment) does.

import { decode } from './cbor'
import { CarStream, marshal } from './car'
import { type Env, Forward, XrpcError, invalidRequest } from './env'
import { array, goString, htmlEscapeJSON, object, renderRecord } from './json'
import {
  type Query,
  bool,
  isAtIdentifier,
  isCID,
  isDID,
  isHandle,
  isNSID,
  isRecordKey,
  isTID,
  limit,
  need,
  optional,
} from './params'
import { exportAdded, exportFull, proof, writtenSince } from './repo'
import { Blocks, REPO_SELECT, type Repo, available, goQuoteASCII, repoNotFound, repoOf, unavailable } from './store'

/** What a handler answers: a status, headers and a body. */
export interface Answer {
  status: number
  headers: Record<string, string>
  body: BodyInit | null
  /** Content-addressed: the bytes of this URL never change. */
  immutable?: boolean
}

export interface Ctx {
  env: Env
  q: Query
  request: Request
  url: URL
  waitUntil(p: Promise<unknown>): void
}

/** A JSON answer, written as echo's c.JSON writes it (a newline after). */
export function json(status: number, body: string): Answer {
  return { status, headers: { 'content-type': 'application/json' }, body: body + '\n' }
}

type Row = Record<string, unknown>

async function first(stmt: D1PreparedStatement): Promise<Row | null> {
  return (await stmt.first<Row>()) ?? null
}

// ---- com.atproto.repo.* (api/repo) -------------------------------------

/**
 * resolveRepo: the hosted account a repo parameter (handle or DID) names,
 * else InvalidRequest. A handle matches case-insensitively, as pdslog's
 * handle index does. didSQL is the account's DID as an SQL expression (a
 * parameter, or a subquery on the handle), so that the statements reading
 * the repo go in the same batch (one round trip) as the account's.
 */
function account(env: Env, raw: string): { stmt: D1PreparedStatement; didSQL: string } {
  if (raw.startsWith('did:')) {
    return { stmt: env.DB.prepare(REPO_SELECT + ' WHERE a.did = ?').bind(raw), didSQL: '?' }
  }
  return {
    stmt: env.DB.prepare(REPO_SELECT + ' WHERE a.handle = ? COLLATE NOCASE ORDER BY a.seq DESC LIMIT 1').bind(raw),
    didSQL: '(SELECT did FROM account_state WHERE handle = ? COLLATE NOCASE ORDER BY seq DESC LIMIT 1)',
  }
}

function couldNotFind(raw: string): XrpcError {
  return invalidRequest('Could not find repo: ' + raw)
}

/**
 * A repo that is not active (deactivated, taken down, ...) is read only
 * by its owner and the admin (api/repo mayRead). Their requests carry
 * credentials and go to the origin (index.ts), so every caller here is
 * another: each method answers as pdslog answers them.
 */
function readable(r: Repo): boolean {
  return r.active
}

/**
 * Record takedowns (record_takedown, migration 0003): a record taken down
 * is not served by getRecord and listRecords. A mirror still reading the
 * log again for the takedowns it passed before 0003 (mirror_backfill) has
 * not got them all: those reads go to the origin meanwhile.
 */
const NOT_TAKEN_DOWN = 'NOT EXISTS (SELECT 1 FROM record_takedown t WHERE t.uri = record.uri)'

function backfillStatement(env: Env): D1PreparedStatement {
  return env.DB.prepare('SELECT 1 AS pending FROM mirror_backfill WHERE name = ?').bind(env.MIRROR_NAME || 'cloudflare')
}

function checkBackfill(res: D1Result): void {
  if ((res.results as Row[]).length > 0) throw new Forward('the mirror is still reading record takedowns (mirror_backfill)')
}

/** The atproto JSON of a record row: its stored JSON, or its block rendered. */
async function recordJSON(env: Env, did: string, cid: string, stored: unknown, blocks?: Blocks): Promise<string> {
  if (typeof stored === 'string') return htmlEscapeJSON(stored)
  const b = await (blocks ?? new Blocks(env, did)).get(cid)
  try {
    return renderRecord(decode(b))
  } catch (e) {
    throw new Forward('record ' + cid + ' not rendered here: ' + String(e))
  }
}

/** com.atproto.repo.getRecord (api/repo GetRecord). */
export async function getRecord(c: Ctx): Promise<Answer> {
  const raw = need(c.q, 'repo', isAtIdentifier)
  const coll = need(c.q, 'collection', isNSID)
  const rkey = need(c.q, 'rkey', isRecordKey)
  const wantCID = optional(c.q, 'cid', isCID)
  const { env } = c
  const a = account(env, raw)
  const [ar, rr, br] = await env.DB.batch([
    a.stmt,
    env.DB.prepare(`SELECT cid, json FROM record WHERE uri = 'at://' || ${a.didSQL} || ? AND ${NOT_TAKEN_DOWN}`).bind(raw, '/' + coll + '/' + rkey),
    backfillStatement(env),
  ])
  checkBackfill(br)
  const r = repoOf((ar.results as Row[])[0])
  // A repo hosted elsewhere: the origin passes the call through to the
  // AppView, as the reference does.
  if (!r) throw new Forward('repo not hosted here')
  const uri = 'at://' + r.did + '/' + coll + '/' + rkey
  const rec = (rr.results as Row[])[0]
  // A repo not active has no records to others; a record taken down is
  // not there.
  if (!readable(r) || !rec || (wantCID !== '' && rec.cid !== wantCID)) {
    throw new XrpcError(400, 'RecordNotFound', 'Could not locate record: ' + uri)
  }
  const value = await recordJSON(env, r.did, rec.cid as string, rec.json)
  return json(200, object([['uri', goString(uri)], ['cid', goString(rec.cid as string)], ['value', value]]))
}

/** com.atproto.repo.listRecords (api/repo ListRecords). */
export async function listRecords(c: Ctx): Promise<Answer> {
  const raw = need(c.q, 'repo', isAtIdentifier)
  const coll = need(c.q, 'collection', isNSID)
  const n = limit(c.q, 50, 100)
  const reverse = bool(c.q, 'reverse')
  const cursor = optional(c.q, 'cursor', isRecordKey)
  const { env } = c
  const a = account(env, raw)
  // Records of a collection are the URIs between "at://DID/coll/" and
  // "at://DID/coll0" ("/" bumped): rkeys in byte order, as pdslog lists
  // them (newest first by default, reverse oldest first), the cursor
  // excluded.
  const lo = `'at://' || ${a.didSQL} || ?`
  const stmt = reverse
    ? env.DB.prepare(`SELECT uri, cid, json FROM record WHERE uri > ${lo} AND uri < ${lo} AND ${NOT_TAKEN_DOWN} ORDER BY uri LIMIT ?`).bind(
        raw,
        '/' + coll + '/' + cursor,
        raw,
        '/' + coll + '0',
        n,
      )
    : env.DB.prepare(`SELECT uri, cid, json FROM record WHERE uri >= ${lo} AND uri < ${lo} AND ${NOT_TAKEN_DOWN} ORDER BY uri DESC LIMIT ?`).bind(
        raw,
        '/' + coll + '/',
        raw,
        cursor === '' ? '/' + coll + '0' : '/' + coll + '/' + cursor,
        n,
      )
  const [ar, rr, br] = await env.DB.batch([a.stmt, stmt, backfillStatement(env)])
  checkBackfill(br)
  const r = repoOf((ar.results as Row[])[0])
  // A repo not active is, to others, a repo pdslog does not know.
  if (!r || !readable(r)) throw couldNotFind(raw)
  const prefix = 'at://' + r.did + '/' + coll + '/'
  const rows = rr.results as Row[]
  const blocks = new Blocks(env, r.did)
  const missing = rows.filter((x) => typeof x.json !== 'string').map((x) => x.cid as string)
  if (missing.length > 0) await blocks.load(missing)
  const items: string[] = []
  let last = ''
  for (const row of rows) {
    const uri = row.uri as string
    last = uri.slice(prefix.length)
    const value = await recordJSON(env, r.did, row.cid as string, row.json, blocks)
    items.push(object([['uri', goString(uri)], ['cid', goString(row.cid as string)], ['value', value]]))
  }
  const fields: [string, string][] = []
  if (rows.length === n) fields.push(['cursor', goString(last)])
  fields.push(['records', array(items)])
  return json(200, object(fields))
}

/** com.atproto.repo.describeRepo (api/repo DescribeRepo). */
export async function describeRepo(c: Ctx): Promise<Answer> {
  const raw = need(c.q, 'repo', isAtIdentifier)
  const { env } = c
  if (!env.PUBLIC_URL) throw new Forward('PUBLIC_URL is not set')
  const a = account(env, raw)
  const [ar, k, cs] = await env.DB.batch([
    a.stmt,
    env.DB.prepare(`SELECT public_key FROM signing_key WHERE did = ${a.didSQL}`).bind(raw),
    collectionsStatement(env, a.didSQL, raw),
  ])
  const r = repoOf((ar.results as Row[])[0])
  if (!r) throw new XrpcError(400, 'RepoNotFound', 'Could not find repo for DID: ' + raw)
  // The status's error, naming the repo as asked for (DID or handle).
  if (!readable(r)) throw unavailable(raw, r.status)
  const key = (k.results as Row[])[0]?.public_key
  if (typeof key !== 'string') throw new Forward('no signing key mirrored for ' + r.did)
  const colls = (cs.results as Row[]).map((x) => x.coll as string).sort()
  const handle = r.handle ?? ''
  const did = goString(r.did)
  const doc = object([
    [
      '@context',
      array(
        ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1', 'https://w3id.org/security/suites/secp256k1-2019/v1'].map(
          goString,
        ),
      ),
    ],
    ['id', did],
    ['alsoKnownAs', array([goString('at://' + handle)])],
    [
      'verificationMethod',
      array([
        object([
          ['id', goString(r.did + '#atproto')],
          ['type', goString('Multikey')],
          ['controller', did],
          ['publicKeyMultibase', goString(key)],
        ]),
      ]),
    ],
    [
      'service',
      array([
        object([
          ['id', goString('#atproto_pds')],
          ['type', goString('AtprotoPersonalDataServer')],
          ['serviceEndpoint', goString(env.PUBLIC_URL)],
        ]),
      ]),
    ],
  ])
  return json(
    200,
    object([
      ['handle', goString(handle)],
      ['did', did],
      ['didDoc', doc],
      ['collections', array(colls.map(goString))],
      ['handleIsCorrect', 'true'],
    ]),
  )
}

/**
 * The collections of a repo, one index seek each: from each collection
 * found, the next is the first URI past "<collection>0" (no URI of the
 * collection, "<collection>/...", sorts there or after, and no other
 * collection's sorts between them). NSIDs hold no "/": the collection is
 * the URI up to its next "/". They come in URI order, not name order.
 */
function collectionsStatement(env: Env, didSQL: string, raw: string): D1PreparedStatement {
  const coll = `substr(uri, length(p.prefix) + 1, instr(substr(uri, length(p.prefix) + 1), '/') - 1)`
  return env.DB.prepare(
    `WITH RECURSIVE p(prefix, hi) AS (
  SELECT 'at://' || d || '/', 'at://' || d || '0' FROM (SELECT ${didSQL} AS d) WHERE d IS NOT NULL
), c(coll) AS (
  SELECT (SELECT ${coll} FROM record, p WHERE uri > p.prefix AND uri < p.hi ORDER BY uri LIMIT 1)
  UNION ALL
  SELECT (SELECT ${coll} FROM record, p WHERE uri >= p.prefix || c.coll || '0' AND uri < p.hi ORDER BY uri LIMIT 1) FROM c WHERE c.coll IS NOT NULL
)
SELECT coll FROM c WHERE coll IS NOT NULL`,
  ).bind(raw)
}

// ---- com.atproto.sync.* (api/sync, api/blob) ---------------------------

async function syncRepo(env: Env, did: string): Promise<Repo | null> {
  return repoOf(await first(env.DB.prepare(REPO_SELECT + ' WHERE a.did = ?').bind(did)))
}

const CAR = 'application/vnd.ipld.car'

/** com.atproto.sync.getLatestCommit (api/sync GetLatestCommit). */
export async function getLatestCommit(c: Ctx): Promise<Answer> {
  const did = need(c.q, 'did', isDID)
  const h = available(await syncRepo(c.env, did), did)
  return json(200, object([['cid', goString(h.commit)], ['rev', goString(h.rev)]]))
}

/** com.atproto.sync.getRepoStatus (api/sync GetRepoStatus): not gated. */
export async function getRepoStatus(c: Ctx): Promise<Answer> {
  const did = need(c.q, 'did', isDID)
  const r = await syncRepo(c.env, did)
  if (!r || r.commit === null) throw repoNotFound(did)
  const fields: [string, string][] = [
    ['did', goString(did)],
    ['active', r.active ? 'true' : 'false'],
  ]
  if (!r.active && r.status) fields.push(['status', goString(r.status)])
  if (r.active && r.rev) fields.push(['rev', goString(r.rev)])
  return json(200, object(fields))
}

/** com.atproto.sync.listRepos (api/sync ListRepos): every repo, not gated. */
export async function listRepos(c: Ctx): Promise<Answer> {
  const n = limit(c.q, 500, 1000)
  const after = optional(c.q, 'cursor', isDID)
  const rows = (
    await c.env.DB.prepare(REPO_SELECT + ' WHERE a.did > ? ORDER BY a.did LIMIT ?')
      .bind(after, n)
      .all<Row>()
  ).results
  const items: string[] = []
  for (const row of rows) {
    const r = repoOf(row)!
    if (r.commit === null) continue // created, first commit not mirrored yet
    const f: [string, string][] = [
      ['did', goString(r.did)],
      ['head', goString(r.commit)],
      ['rev', goString(r.rev ?? '')],
      ['active', r.active ? 'true' : 'false'],
    ]
    if (!r.active && r.status) f.push(['status', goString(r.status)])
    items.push(object(f))
  }
  const fields: [string, string][] = []
  if (rows.length === n) fields.push(['cursor', goString(rows[rows.length - 1].did as string)])
  fields.push(['repos', array(items)])
  return json(200, object(fields))
}

/** com.atproto.sync.getRecord (api/sync GetRecord): a CAR of the commit, the proof path and the record. */
export async function syncGetRecord(c: Ctx): Promise<Answer> {
  const did = need(c.q, 'did', isDID)
  const coll = need(c.q, 'collection', isNSID)
  const rkey = need(c.q, 'rkey', isRecordKey)
  const key = coll + '/' + rkey
  if (key.length > 1024) throw new Forward('record path too long')
  const blocks = new Blocks(c.env, did)
  const [rr, br] = await c.env.DB.batch([c.env.DB.prepare(REPO_SELECT + ' WHERE a.did = ?').bind(did), blocks.headStatement()])
  const h = available(repoOf((rr.results as Row[])[0]), did)
  await blocks.absorb([br])
  const commit = await blocks.get(h.commit)
  const p = await proof(blocks, h.data, key)
  const out: [string, Uint8Array][] = [[h.commit, commit], ...p.nodes]
  if (p.value !== null) out.push([p.value, await blocks.get(p.value)])
  return { status: 200, headers: { 'content-type': CAR }, body: marshal([h.commit], out) }
}

/** com.atproto.sync.getRepo (api/sync GetRepo): the repo, or the blocks written since a rev, streamed. */
export async function getRepo(c: Ctx): Promise<Answer> {
  const did = need(c.q, 'did', isDID)
  const since = optional(c.q, 'since', isTID)
  const blocks = new Blocks(c.env, did)
  const [rr, br] = await c.env.DB.batch([c.env.DB.prepare(REPO_SELECT + ' WHERE a.did = ?').bind(did), blocks.headStatement()])
  const h = available(repoOf((rr.results as Row[])[0]), did)
  await blocks.absorb([br])
  // Everything that can fail before the first byte does so here, so that
  // the request can still go to the origin.
  await blocks.load([h.commit, h.data])
  let added: Set<string> | null = null
  if (since !== '') added = await writtenSince(c.env, blocks, did, h, since)
  const car = new CarStream()
  const run = async () => {
    try {
      await car.start([h.commit])
      if (added === null) await exportFull(blocks, car, h.commit, h.data)
      else await exportAdded(blocks, car, h.commit, h.data, added)
      await car.close()
    } catch (e) {
      console.error('getRepo: CAR stream failed', did, String(e))
      await car.abort(e)
    }
  }
  c.waitUntil(run())
  return { status: 200, headers: { 'content-type': CAR }, body: car.readable }
}

/** com.atproto.sync.getBlocks (api/sync GetBlocks): content-addressed. */
export async function getBlocks(c: Ctx): Promise<Answer> {
  const did = need(c.q, 'did', isDID)
  const raw = c.q.all('cids')
  if (raw.length === 0 || !raw.every(isCID)) throw new Forward('parameter cids')
  const cids = [...new Set(raw)]
  available(await syncRepo(c.env, did), did)
  const blocks = new Blocks(c.env, did)
  const have = await blocks.present(cids)
  const missing = cids.filter((k) => !have.has(k))
  if (missing.length > 0) throw new XrpcError(400, 'BlockNotFound', 'Could not find cids: ' + missing.join(','))
  await blocks.load(cids)
  return { status: 200, headers: { 'content-type': CAR }, body: marshal([], cids.map((k) => [k, blocks.take(k)])), immutable: true }
}

function blobNotFound(): XrpcError {
  return new XrpcError(400, 'BlobNotFound', 'Blob not found')
}

/** com.atproto.sync.getBlob (api/blob GetBlob): from R2, with pdslog's safety headers. */
export async function getBlob(c: Ctx): Promise<Answer> {
  const { env } = c
  const did = need(c.q, 'did', isDID)
  const cid = need(c.q, 'cid', isCID)
  const [a, b] = await env.DB.batch([
    env.DB.prepare(REPO_SELECT + ' WHERE a.did = ?').bind(did),
    env.DB.prepare('SELECT key, mime, size, quarantined FROM blob WHERE did = ? AND cid = ?').bind(did, cid),
  ])
  available(repoOf((a.results as Row[])[0]), did)
  const blob = (b.results as Row[])[0]
  if (!blob || Number(blob.quarantined) !== 0) throw blobNotFound()
  const size = BigInt(blob.size as number)
  const rangeHeader = c.request.headers.get('range') ?? ''
  let off = 0n
  let n = size
  let partial = false
  try {
    ;[off, n, partial] = parseRange(rangeHeader, size)
  } catch (e) {
    if (!(e instanceof RangeError)) throw e
    throw new XrpcError(416, 'InvalidRequest', e.message, { 'Content-Range': `bytes */${size}` })
  }
  const obj = await env.BUCKET.get(blob.key as string, partial ? { range: { offset: Number(off), length: Number(n) } } : undefined)
  if (!obj) throw new Forward('blob ' + cid + ' is not in R2')
  const headers: Record<string, string> = {
    'Content-Type': blob.mime as string,
    'Content-Length': String(n),
    'X-Content-Type-Options': 'nosniff',
    'Content-Disposition': 'attachment; filename="' + cid + '"',
    'Content-Security-Policy': "default-src 'none'; sandbox",
    'Accept-Ranges': 'bytes',
    ETag: '"' + cid + '"',
  }
  if (partial) headers['Content-Range'] = `bytes ${off}-${off + n - 1n}/${size}`
  return { status: partial ? 206 : 200, headers, body: obj.body, immutable: true }
}

class RangeError extends Error {}

function goInt(s: string): bigint | null {
  if (!/^[+-]?[0-9]+$/.test(s)) return null
  const v = BigInt(s)
  if (v > 0x7fffffffffffffffn || v < -0x8000000000000000n) return null
  return v
}

/** parseRange of api/blob: one "bytes=" range of a blob of size bytes. */
function parseRange(hdr: string, size: bigint): [bigint, bigint, boolean] {
  if (!hdr.startsWith('bytes=') || hdr.includes(',')) return [0n, size, false]
  const spec = hdr.slice('bytes='.length)
  const trimmed = spec.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '')
  const dash = trimmed.indexOf('-')
  if (dash < 0) return [0n, size, false]
  const first = trimmed.slice(0, dash)
  const last = trimmed.slice(dash + 1)
  if (first === '') {
    const k = goInt(last)
    if (k === null || k <= 0n) throw new RangeError('bad range ' + goQuoteASCII(hdr))
    const m = k < size ? k : size
    return [size - m, m, true]
  }
  const a = goInt(first)
  if (a === null || a < 0n || a >= size) throw new RangeError('range ' + goQuoteASCII(hdr) + " is outside the blob's " + size + ' bytes')
  let b = size - 1n
  if (last !== '') {
    const v = goInt(last)
    if (v === null || v < a) throw new RangeError('bad range ' + goQuoteASCII(hdr))
    b = v < size - 1n ? v : size - 1n
  }
  return [a, b - a + 1n, true]
}

/** com.atproto.sync.listBlobs (api/blob ListBlobs). */
export async function listBlobs(c: Ctx): Promise<Answer> {
  const { env } = c
  const did = c.q.get('did')
  if (!isDID(did)) throw new Forward('parameter did')
  const since = optional(c.q, 'since', isTID)
  const n = limit(c.q, 500, 1000)
  const cursor = c.q.get('cursor') // any string: CIDs after it
  available(await syncRepo(env, did), did)
  // Blobs referenced by current records (blob_usage), in CID order (the
  // order of their keys, blobs/DID/CID); with since, only those referenced
  // by records written after that rev.
  const prefix = 'blobs/' + did + '/'
  const rows = (
    since === ''
      ? await env.DB.prepare('SELECT DISTINCT key FROM blob_usage WHERE did = ? AND key > ? ORDER BY key LIMIT ?').bind(did, prefix + cursor, n).all<Row>()
      : await env.DB.prepare('SELECT DISTINCT key FROM blob_usage WHERE did = ? AND key > ? AND repo_rev > ? ORDER BY key LIMIT ?')
          .bind(did, prefix + cursor, since, n)
          .all<Row>()
  ).results
  const cids = rows.map((r) => (r.key as string).slice(prefix.length))
  const fields: [string, string][] = [['cids', array(cids.map(goString))]]
  if (cids.length === n) fields.push(['cursor', goString(cids[n - 1])])
  return json(200, object(fields))
}

// ---- the rest ------------------------------------------------------------

/**
 * /.well-known/atproto-did (api/server AtprotoDID): the DID of the hosted
 * handle the Host header names, as text.
 */
export async function atprotoDID(c: Ctx): Promise<Answer> {
  const { env } = c
  if (!env.HANDLE_DOMAINS) throw new Forward('HANDLE_DOMAINS is not set')
  const text = (status: number, s: string): Answer => ({ status, headers: { 'content-type': 'text/plain; charset=UTF-8' }, body: s })
  const notFound = text(404, 'no user by that name')
  let host = c.request.headers.get('host') ?? c.url.host
  // net.SplitHostPort: "[v6]:port" or "name:port".
  const m = /^(?:\[([^\]]*)\]|([^:]*)):[^:]*$/.exec(host)
  if (m) host = m[1] ?? m[2]
  if (!isHandle(host)) return notFound
  const lh = host.toLowerCase()
  const domains = env.HANDLE_DOMAINS.split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '')
    .map((d) => (d.startsWith('.') ? d : '.' + d).toLowerCase())
  if (!domains.some((d) => lh.endsWith(d) && lh.length > d.length)) return notFound
  const row = await first(env.DB.prepare('SELECT did FROM account_state WHERE handle = ? COLLATE NOCASE ORDER BY seq DESC LIMIT 1').bind(host))
  if (!row) return notFound
  return text(200, row.did as string)
}

/** /xrpc/_health: the mirror's cursor in D1 and its age. */
export async function health(c: Ctx): Promise<Answer> {
  const name = c.env.MIRROR_NAME || 'cloudflare'
  let row: Row | null
  try {
    row = await first(c.env.DB.prepare('SELECT cursor, head, updated_at FROM mirror_state WHERE name = ?').bind(name))
  } catch (e) {
    return json(503, object([['error', goString('ServiceUnavailable')], ['message', goString('the mirror database is not answering')]]))
  }
  if (!row) {
    return json(503, object([['error', goString('ServiceUnavailable')], ['message', goString('the mirror ' + name + ' has written nothing yet')]]))
  }
  const updated = Date.parse(row.updated_at as string)
  const age = Number.isNaN(updated) ? -1 : Math.max(0, (Date.now() - updated) / 1000)
  return json(
    200,
    object([
      ['mirror', goString(name)],
      ['cursor', String(row.cursor)],
      ['head', String(row.head)],
      ['lag', String(Math.max(0, Number(row.head) - Number(row.cursor)))],
      ['updatedAt', goString(row.updated_at as string)],
      ['ageSeconds', age.toFixed(3)],
    ]),
  )
}

