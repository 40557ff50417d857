// JSON exactly as pdslog writes it: Go's encoding/json through echo's
// encoder (HTML-escaping on), one value per response followed by "\n".

import { base64Encode, compareCodePoints, cidString } from './bytes'
import { CborError, CborMap, Link, type Value } from './cbor'

const HEX = '0123456789abcdef'

/** A JSON string as Go's encoding/json writes it with HTML escaping on. */
export function goString(s: string): string {
  let out = '"'
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    let esc: string | null = null
    if (c < 0x20 || c === 0x22 || c === 0x5c || c === 0x3c || c === 0x3e || c === 0x26) {
      switch (c) {
        case 0x22:
          esc = '\\"'
          break
        case 0x5c:
          esc = '\\\\'
          break
        case 0x08:
          esc = '\\b'
          break
        case 0x0c:
          esc = '\\f'
          break
        case 0x0a:
          esc = '\\n'
          break
        case 0x0d:
          esc = '\\r'
          break
        case 0x09:
          esc = '\\t'
          break
        default:
          esc = '\\u00' + HEX[c >> 4] + HEX[c & 15]
      }
    } else if (c === 0x2028 || c === 0x2029) {
      esc = '\\u202' + HEX[c & 15]
    } else if (c >= 0xd800 && c <= 0xdfff) {
      // A lone surrogate is not UTF-8 (Go would have written U+FFFD for its
      // bytes); a pair is one code point, written as is.
      const pair = c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff
      if (pair) {
        i++
        continue
      }
      esc = '\\ufffd'
    }
    if (esc !== null) {
      out += s.slice(start, i) + esc
      start = i + 1
    }
  }
  return out + s.slice(start) + '"'
}

/**
 * The JSON the mirror stored for a record (Go's encoding/json without HTML
 * escaping) as echo writes it (with): <, > and & can only appear inside
 * strings, where Go's HTML-escaping encoder writes \u003c, \u003e, \u0026;
 * every other byte is the same.
 */
export function htmlEscapeJSON(s: string): string {
  return s.replace(/[<>&]/g, (c) => (c === '<' ? '\\u003c' : c === '>' ? '\\u003e' : '\\u0026'))
}

/** JSON of a value that renders to the same text in Go and JS (objects of strings, numbers, booleans). */
export type Fields = [string, string][]

/** An object whose fields are already JSON, in this order. */
export function object(fields: Fields): string {
  return '{' + fields.map(([k, v]) => goString(k) + ':' + v).join(',') + '}'
}

export function array(items: string[]): string {
  return '[' + items.join(',') + ']'
}

// Limits of atdata (indigo) that a record must keep for pdslog to render it.
const MAX_CONTAINER_LEN = 128 * 1024
const MAX_OBJECT_KEY_LEN = 8192
const MAX_STRING_LEN = 1024 * 1024

/**
 * Renders a record's DAG-CBOR, decoded, as pdslog does: atdata's
 * UnmarshalCBOR (blobs, links and bytes as their JSON forms) written by
 * encoding/json (map keys sorted). Whatever atdata would refuse (pdslog
 * then fails the request) throws here.
 */
export function renderRecord(v: Value): string {
  if (!(v instanceof CborMap)) throw new CborError('record: not an object')
  return renderMap(v)
}

function renderAtom(v: Value): string {
  if (v === null) return 'null'
  if (typeof v === 'boolean') return v ? 'true' : 'false'
  if (typeof v === 'number') return String(v)
  if (typeof v === 'bigint') {
    if (v > 0x7fffffffffffffffn || v < -0x8000000000000000n) throw new CborError('record: integer out of range')
    return v.toString()
  }
  if (typeof v === 'string') {
    if (utf8Length(v) > MAX_STRING_LEN) throw new CborError('record: string too long')
    return goString(v)
  }
  if (v instanceof Uint8Array) return object([['$bytes', goString(base64Encode(v, false))]])
  if (v instanceof Link) return link(v.bytes)
  if (Array.isArray(v)) {
    if (v.length > MAX_CONTAINER_LEN) throw new CborError('record: array too long')
    return array(v.map(renderAtom))
  }
  return renderMap(v)
}

function link(c: Uint8Array): string {
  return object([['$link', goString(cidString(c))]])
}

function renderMap(m: CborMap): string {
  if (m.entries.length > MAX_CONTAINER_LEN) throw new CborError('record: object too large')
  // atdata's special objects, by their keys.
  if (m.has('$link') || m.has('$bytes')) throw new CborError('record: $link or $bytes key in CBOR') // left to the origin
  const typ = m.get('$type')
  if (typ !== undefined) {
    if (typeof typ !== 'string' || typ === '') throw new CborError('record: bad $type')
    if (typ === 'blob') return blob(m)
  }
  if (m.entries.length === 2 && m.has('mimeType') && m.has('cid')) throw new CborError('record: legacy blob') // left to the origin
  const fields = m.entries.map(([k, v]): [string, string] => {
    if (utf8Length(k) > MAX_OBJECT_KEY_LEN) throw new CborError('record: key too long')
    return [k, renderAtom(v)]
  })
  fields.sort((a, b) => compareCodePoints(a[0], b[0]))
  return object(fields)
}

function blob(m: CborMap): string {
  if (m.entries.length !== 4) throw new CborError('record: blob with other than 4 fields')
  const size = m.get('size')
  const mime = m.get('mimeType')
  const ref = m.get('ref')
  if (typeof size !== 'number' || size < 0) throw new CborError('record: blob size')
  if (typeof mime !== 'string') throw new CborError('record: blob mimeType')
  if (!(ref instanceof Link)) throw new CborError('record: blob ref')
  // atdata.BlobSchema's field order.
  return object([
    ['$type', goString('blob')],
    ['ref', link(ref.bytes)],
    ['mimeType', goString(mime)],
    ['size', String(size)],
  ])
}

function utf8Length(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4
      i++
    } else n += 3
  }
  return n
}
