// pdslog at the edge: a Cloudflare Worker that answers the public read
// XRPC methods from pdslog's mirror (D1 rows, R2 objects; see
// projections/mirror) exactly as pdslog answers them, and forwards every
// other request to the origin pdslog unchanged. README.md says what is
// served, what is forwarded and how to deploy.

import { type Env, Forward, XrpcError } from './env'
import * as h from './handlers'
import { goString, object } from './json'
import { parseQuery } from './params'

type Handler = (c: h.Ctx) => Promise<h.Answer>

/** The paths served from the mirror (GET only; exact paths). */
const routes: Record<string, Handler> = {
  '/xrpc/com.atproto.repo.getRecord': h.getRecord,
  '/xrpc/com.atproto.repo.listRecords': h.listRecords,
  '/xrpc/com.atproto.repo.describeRepo': h.describeRepo,
  '/xrpc/com.atproto.sync.getLatestCommit': h.getLatestCommit,
  '/xrpc/com.atproto.sync.getRepoStatus': h.getRepoStatus,
  '/xrpc/com.atproto.sync.listRepos': h.listRepos,
  '/xrpc/com.atproto.sync.getRecord': h.syncGetRecord,
  '/xrpc/com.atproto.sync.getRepo': h.getRepo,
  '/xrpc/com.atproto.sync.getBlocks': h.getBlocks,
  '/xrpc/com.atproto.sync.getBlob': h.getBlob,
  '/xrpc/com.atproto.sync.listBlobs': h.listBlobs,
  '/.well-known/atproto-did': h.atprotoDID,
  '/xrpc/_health': h.health,
}

/** The response header saying who answered: the mirror or the origin. */
const SOURCE = 'x-pdslog-edge'

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url)
    const handler = routes[url.pathname]
    if (!handler || !servable(request)) return forward(request, env, url)
    try {
      const q = parseQuery(url.search.slice(1))
      // ?pretty makes echo indent its JSON: not worth copying.
      if (q.has('pretty')) throw new Forward('pretty')
      // One D1 session per request: its reads may go to the nearest read
      // replica, and are consistent with each other (a later read never
      // sees an older mirror than an earlier one).
      const session = env.DB.withSession('first-unconstrained')
      const renv: Env = { ...env, DB: { prepare: (sql: string) => session.prepare(sql), batch: session.batch.bind(session) } as D1Database }
      const a = await handler({ env: renv, q, request, url, waitUntil: (p) => ctx.waitUntil(p) })
      return respond(request, env, a, url.pathname === '/xrpc/_health')
    } catch (e) {
      if (e instanceof Forward) return forward(request, env, url)
      if (e instanceof XrpcError) {
        const a = h.json(e.status, errorBody(e.error, e.message))
        Object.assign(a.headers, e.headers)
        return respond(request, env, a, false)
      }
      console.error('edge: request failed', url.pathname, String(e), e instanceof Error ? e.stack : '')
      // Whatever went wrong here, the origin can answer.
      return forward(request, env, url)
    }
  },
} satisfies ExportedHandler<Env>

/**
 * Whether the request is one the mirror may answer: a GET without
 * credentials (an owner or the admin may read what others may not; those
 * requests go to the origin, which checks them) and not addressed to
 * another service (atproto-proxy).
 */
function servable(request: Request): boolean {
  if (request.method !== 'GET') return false
  const h = request.headers
  return !h.has('authorization') && !h.has('dpop') && !h.has('atproto-proxy')
}

function errorBody(name: string, message: string): string {
  const f: [string, string][] = [['error', goString(name)]]
  if (message !== '') f.push(['message', goString(message)])
  return object(f)
}

function seconds(v: string | undefined, def: number): number {
  const n = Number(v)
  return v !== undefined && v !== '' && Number.isFinite(n) && n >= 0 ? Math.floor(n) : def
}

/** The answer as a Response, with CORS as pdslog's echo middleware sets it and cache headers. */
function respond(request: Request, env: Env, a: h.Answer, noStore: boolean): Response {
  const headers = new Headers(a.headers)
  headers.append('Vary', 'Origin')
  const origin = request.headers.get('origin')
  if (origin) {
    const allowed = (env.CORS_ORIGINS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
    const list = allowed.length === 0 ? ['*'] : allowed
    const match = list.find((o) => o === '*' || o === origin)
    if (match) {
      headers.set('Access-Control-Allow-Origin', match)
      headers.set('Access-Control-Expose-Headers', '*')
    }
  }
  if (noStore || a.status >= 500) headers.set('Cache-Control', 'no-store')
  else if (a.immutable && a.status < 300) headers.set('Cache-Control', `public, max-age=${seconds(env.IMMUTABLE_MAX_AGE, 86400)}, immutable`)
  else headers.set('Cache-Control', `public, max-age=${seconds(env.SHORT_MAX_AGE, 5)}`)
  headers.set(SOURCE, 'mirror')
  return new Response(a.body, { status: a.status, headers })
}

/**
 * Sends the request to the origin as it came (method, headers, body),
 * with the client's address in X-Forwarded-For (pdslog's per-IP limits
 * read it through echo's RealIP), and returns the origin's answer as it is: redirects are not
 * followed, websockets (the firehose) pass through.
 */
async function forward(request: Request, env: Env, url: URL): Promise<Response> {
  const target = new URL(url.pathname + url.search, env.ORIGIN)
  const headers = new Headers(request.headers)
  // The origin is another host; the host the client asked for is kept in
  // X-Forwarded-Host.
  headers.delete('host')
  headers.set('x-forwarded-host', url.host)
  const ip = request.headers.get('cf-connecting-ip')
  if (ip) {
    const xff = request.headers.get('x-forwarded-for')
    headers.set('x-forwarded-for', xff ? xff + ', ' + ip : ip)
  }
  const resp = await fetch(target, {
    method: request.method,
    headers,
    body: request.method === 'GET' || request.method === 'HEAD' ? undefined : request.body,
    redirect: 'manual',
  })
  if (resp.status === 101 || resp.webSocket) return resp
  const out = new Response(resp.body, resp)
  out.headers.set(SOURCE, 'origin')
  return out
}
