// Query parameters read as pdslog reads them (Go's url.ParseQuery through
// echo: the first value of a name wins), and the syntax checks of its
// parameters (indigo's atproto/syntax). A value pdslog would refuse is
// never refused here: the request goes to the origin (Forward), which
// answers with its own message. So these checks only need to accept no
// more than pdslog accepts.

import { Forward } from './env'
import { parseCID } from './bytes'

export class Query {
  constructor(readonly values: Map<string, string[]>) {}

  /** The first value of name, "" when absent (echo's QueryParam). */
  get(name: string): string {
    return this.values.get(name)?.[0] ?? ''
  }
  all(name: string): string[] {
    return this.values.get(name) ?? []
  }
  has(name: string): boolean {
    return this.values.has(name)
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function unescape(s: string): string | null {
  if (!/[%+]/.test(s)) return s
  const bytes: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x25) {
      const h = s.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(h)) return null
      bytes.push(parseInt(h, 16))
      i += 2
    } else if (c === 0x2b) {
      bytes.push(0x20)
    } else if (c < 0x80) {
      bytes.push(c)
    } else {
      // The URL parser percent-encodes non-ASCII; keep it as UTF-8 anyway.
      for (const b of new TextEncoder().encode(s[i])) bytes.push(b)
    }
  }
  try {
    return utf8.decode(new Uint8Array(bytes))
  } catch {
    throw new Forward('a query value that is not UTF-8')
  }
}

/**
 * Parses a raw query string (without "?") as Go's url.ParseQuery does:
 * pairs split on "&", a pair holding ";" dropped, a pair with a bad
 * escape dropped, "+" is a space.
 */
export function parseQuery(raw: string): Query {
  const m = new Map<string, string[]>()
  for (const part of raw.split('&')) {
    if (part === '' || part.includes(';')) continue
    const eq = part.indexOf('=')
    const k = unescape(eq < 0 ? part : part.slice(0, eq))
    const v = unescape(eq < 0 ? '' : part.slice(eq + 1))
    if (k === null || v === null) continue
    const list = m.get(k)
    if (list) list.push(v)
    else m.set(k, [v])
  }
  return new Query(m)
}

const didRe = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/
const handleRe = /^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/
const nsidRe = /^[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+(\.[a-zA-Z]([a-zA-Z0-9]{0,62})?)$/
const rkeyRe = /^[a-zA-Z0-9_~.:-]{1,512}$/
const tidRe = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/

export function isDID(s: string): boolean {
  return s.length <= 2048 && didRe.test(s)
}
export function isHandle(s: string): boolean {
  return s.length <= 253 && handleRe.test(s)
}
export function isNSID(s: string): boolean {
  return s.length <= 317 && nsidRe.test(s)
}
export function isRecordKey(s: string): boolean {
  return s !== '.' && s !== '..' && rkeyRe.test(s)
}
export function isTID(s: string): boolean {
  return tidRe.test(s)
}

/** A required parameter that passes check, else Forward. */
export function need(q: Query, name: string, check: (s: string) => boolean): string {
  const v = q.get(name)
  if (v === '' || !check(v)) throw new Forward('parameter ' + name)
  return v
}

/** An optional parameter: "" when absent, else it must pass check. */
export function optional(q: Query, name: string, check: (s: string) => boolean): string {
  const v = q.get(name)
  if (v !== '' && !check(v)) throw new Forward('parameter ' + name)
  return v
}

export function isAtIdentifier(s: string): boolean {
  return s.startsWith('did:') ? isDID(s) : isHandle(s)
}

export function isCID(s: string): boolean {
  return parseCID(s) !== null
}

/** xrpc.Limit: absent gives def; otherwise an integer in [1, max]. */
export function limit(q: Query, def: number, max: number): number {
  const raw = q.get('limit')
  if (raw === '') return def
  if (!/^[0-9]{1,7}$/.test(raw)) throw new Forward('parameter limit')
  const n = parseInt(raw, 10)
  if (n < 1 || n > max) throw new Forward('parameter limit')
  return n
}

/** xrpc.Bool: "", "false" or "true", in any case. */
export function bool(q: Query, name: string): boolean {
  const raw = q.get(name)
  if (!/^[\x20-\x7e]*$/.test(raw)) throw new Forward('parameter ' + name)
  switch (raw.toLowerCase()) {
    case '':
    case 'false':
      return false
    case 'true':
      return true
  }
  throw new Forward('parameter ' + name)
}
