// The Cloudflare D1 REST API on top of a real D1 binding (Miniflare runs
// this worker in workerd with Cloudflare's D1 SQLite): pdslog's tests talk
// to it exactly as to https://api.cloudflare.com/client/v4.
//
//   POST /client/v4/accounts/{account_id}/d1/database/{database_id}/query
//   POST /client/v4/accounts/{account_id}/d1/database/{database_id}/raw
//   Authorization: Bearer {token}
//   {"sql": "...", "params": ["..."]}  or  {"batch": [{"sql", "params"}, ...]}
//
// The answer is Cloudflare's envelope, {result, success, errors, messages},
// with one result per statement. A body's statements (a batch's items, or
// the ;-separated statements of one sql) run as one D1 batch: atomically.
// A SQL error is HTTP 400 with code 7500 and SQLite's message; a wrong
// token 403 with code 10000; an unknown database 404 with code 7404.

const PATH = /^\/client\/v4\/accounts\/([^/]+)\/d1\/database\/([^/]+)\/(query|raw)$/

function envelope(status, result, errors = []) {
  return new Response(JSON.stringify({ result, success: errors.length === 0, errors, messages: [] }), {
    status,
    headers: { 'content-type': 'application/json' },
  })
}

function fail(status, code, message) {
  return envelope(status, null, [{ code, message }])
}

// splitSQL splits sql into statements at top-level semicolons, skipping
// quoted strings and identifiers, comments, and the BEGIN ... END body of
// CREATE TRIGGER.
export function splitSQL(sql) {
  const out = []
  let start = 0
  let i = 0
  const n = sql.length
  const push = (end) => {
    const s = sql.slice(start, end).trim()
    if (s !== '' && !/^(--[^\n]*\n?|\/\*[\s\S]*?\*\/|\s)*$/.test(s)) out.push(s)
  }
  let trigger = false
  let depth = 0
  let word = ''
  const endWord = () => {
    const w = word.toUpperCase()
    word = ''
    if (w === '') return
    if (!trigger && w === 'TRIGGER' && /^\s*CREATE\s+(TEMP\s+|TEMPORARY\s+)?$/i.test(sql.slice(start, i - 7))) trigger = true
    if (trigger && (w === 'BEGIN' || w === 'CASE')) depth++
    if (trigger && w === 'END') depth--
  }
  while (i < n) {
    const c = sql[i]
    if (/[A-Za-z_0-9]/.test(c)) {
      word += c
      i++
      continue
    }
    endWord()
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c
      i++
      while (i < n) {
        if (sql[i] === close) {
          if (close !== ']' && sql[i + 1] === close) {
            i += 2
            continue
          }
          break
        }
        i++
      }
      i++
      continue
    }
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++
      continue
    }
    if (c === '/' && sql[i + 1] === '*') {
      const e = sql.indexOf('*/', i + 2)
      i = e < 0 ? n : e + 2
      continue
    }
    if (c === ';' && (!trigger || depth <= 0)) {
      push(i)
      start = i + 1
      trigger = false
      depth = 0
    }
    i++
  }
  endWord()
  push(n)
  return out
}

function toRaw(rows) {
  const columns = rows.length > 0 ? Object.keys(rows[0]) : []
  return { columns, rows: rows.map((r) => columns.map((c) => r[c])) }
}

function jsonValue(v) {
  if (v instanceof ArrayBuffer) return Array.from(new Uint8Array(v))
  return v
}

export default {
  async fetch(request, env) {
    const m = PATH.exec(new URL(request.url).pathname)
    if (!m) return fail(404, 7003, 'Could not route to ' + new URL(request.url).pathname + ', perhaps your object identifier is invalid?')
    if (request.method !== 'POST') return fail(405, 10405, 'Method not allowed')
    const [, account, database, kind] = m
    const auth = request.headers.get('authorization') || ''
    if (env.TOKEN && auth !== 'Bearer ' + env.TOKEN) return fail(403, 10000, 'Authentication error')
    if (env.ACCOUNT && account !== env.ACCOUNT) return fail(403, 10000, 'Authentication error')
    const binding = JSON.parse(env.DATABASES)[database]
    if (!binding) return fail(404, 7404, 'The database ' + database + ' could not be found')
    const db = env[binding]

    let body
    try {
      body = await request.json()
    } catch (e) {
      return fail(400, 7400, 'The request is malformed: ' + e.message)
    }
    let items
    if (Array.isArray(body.batch)) {
      items = body.batch
    } else if (typeof body.sql === 'string') {
      const stmts = splitSQL(body.sql)
      if (stmts.length > 1 && Array.isArray(body.params) && body.params.length > 0) {
        return fail(400, 7400, 'A request with several statements cannot have params')
      }
      items = stmts.map((sql) => ({ sql, params: stmts.length === 1 ? body.params : undefined }))
    } else {
      return fail(400, 7400, 'The request is malformed: need sql or batch')
    }
    if (items.length === 0) return fail(400, 7400, 'The request is malformed: no statements')

    let results
    try {
      const prepared = items.map((it) => {
        if (typeof it.sql !== 'string') throw new Error('statement without sql')
        const st = db.prepare(it.sql)
        return Array.isArray(it.params) && it.params.length > 0 ? st.bind(...it.params) : st
      })
      results = await db.batch(prepared)
    } catch (e) {
      const msg = String((e && (e.cause?.message || e.message)) || e)
      return fail(400, 7500, msg)
    }
    return envelope(
      200,
      results.map((r) => {
        const rows = (r.results || []).map((row) => {
          const o = {}
          for (const [k, v] of Object.entries(row)) o[k] = jsonValue(v)
          return o
        })
        return {
          results: kind === 'raw' ? toRaw(rows) : rows,
          success: r.success,
          meta: r.meta,
        }
      }),
    )
  },
}
