// Byte helpers: base32 (CID strings), base64 (D1's block column and
// $bytes), varints, and CIDs in the forms the mirror stores them.

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
const B32_INDEX = new Int16Array(128).fill(-1)
for (let i = 0; i < B32.length; i++) B32_INDEX[B32.charCodeAt(i)] = i

/** base32 (RFC 4648, lower case, no padding). */
export function base32Encode(b: Uint8Array): string {
  let out = ''
  let bits = 0
  let value = 0
  for (let i = 0; i < b.length; i++) {
    value = (value << 8) | b[i]
    bits += 8
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31]
  return out
}

/** Decodes base32 (lower case, no padding); null if s is not that. */
export function base32Decode(s: string): Uint8Array | null {
  const out = new Uint8Array(Math.floor((s.length * 5) / 8))
  let bits = 0
  let value = 0
  let j = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const v = c < 128 ? B32_INDEX[c] : -1
    if (v < 0) return null
    value = ((value << 5) | v) & 0xffff
    bits += 5
    if (bits >= 8) {
      out[j++] = (value >>> (bits - 8)) & 0xff
      bits -= 8
    }
  }
  // Canonical only: the leftover bits are zero and fewer than 5.
  if (bits >= 5 || (value & ((1 << bits) - 1)) !== 0) return null
  return out
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const B64_INDEX = new Int16Array(128).fill(-1)
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i

/** base64 with the standard alphabet; padded as Go's StdEncoding, or not (RawStdEncoding). */
export function base64Encode(b: Uint8Array, pad: boolean): string {
  let out = ''
  let i = 0
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2]
    out += B64[n >>> 18] + B64[(n >>> 12) & 63] + B64[(n >>> 6) & 63] + B64[n & 63]
  }
  if (i < b.length) {
    const n = (b[i] << 16) | ((i + 1 < b.length ? b[i + 1] : 0) << 8)
    out += B64[n >>> 18] + B64[(n >>> 12) & 63]
    if (i + 1 < b.length) out += B64[(n >>> 6) & 63]
    if (pad) out += i + 1 < b.length ? '=' : '=='
  }
  return out
}

/** Decodes standard base64, padded or not; null if s is not that. */
export function base64Decode(s: string): Uint8Array | null {
  let end = s.length
  while (end > 0 && s.charCodeAt(end - 1) === 61 /* = */) end--
  if (s.length - end > 2 || (s.length !== end && s.length % 4 !== 0)) return null
  const n = Math.floor((end * 6) / 8)
  const out = new Uint8Array(n)
  let value = 0
  let bits = 0
  let j = 0
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i)
    const v = c < 128 ? B64_INDEX[c] : -1
    if (v < 0) return null
    value = ((value << 6) | v) & 0xffffff
    bits += 6
    if (bits >= 8) {
      out[j++] = (value >>> (bits - 8)) & 0xff
      bits -= 8
    }
  }
  if (end % 4 === 1) return null
  return out
}

/** Reads an unsigned varint at off: [value, next offset], or null. */
export function readVarint(b: Uint8Array, off: number): [number, number] | null {
  let x = 0
  let mul = 1
  for (let i = 0; i < 8 && off < b.length; i++) {
    const c = b[off++]
    x += (c & 0x7f) * mul
    if (c < 0x80) {
      if (i > 0 && c === 0) return null // not minimal
      return [x, off]
    }
    mul *= 128
  }
  return null
}

export function varintBytes(n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

/** The length of the CID (v1) at the start of b, or -1. */
export function cidLength(b: Uint8Array, off = 0): number {
  const version = readVarint(b, off)
  if (!version || version[0] !== 1) return -1
  const codec = readVarint(b, version[1])
  if (!codec) return -1
  const code = readVarint(b, codec[1])
  if (!code) return -1
  const len = readVarint(b, code[1])
  if (!len) return -1
  const end = len[1] + len[0]
  return end <= b.length ? end - off : -1
}

/**
 * The binary form of a CIDv1 string as pdslog prints them (multibase "b",
 * base32), or null if s is not exactly that: a CID with a sha2-256
 * multihash, in its canonical form. Anything else (a CIDv0, another base,
 * another hash) is left to the origin.
 */
export function parseCID(s: string): Uint8Array | null {
  if (s.length < 2 || s[0] !== 'b') return null
  const b = base32Decode(s.slice(1))
  if (!b || cidLength(b) !== b.length) return null
  const version = readVarint(b, 0)!
  const codec = readVarint(b, version[1])!
  const code = readVarint(b, codec[1])!
  const len = readVarint(b, code[1])!
  if (code[0] !== 0x12 || len[0] !== 32) return null
  return b
}

/** The string form (base32, "b") of a binary CIDv1. */
export function cidString(b: Uint8Array): string {
  return 'b' + base32Encode(b)
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.length
  }
  return out
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Decodes UTF-8 strictly: invalid bytes throw. */
export function decodeUTF8(b: Uint8Array): string {
  return utf8.decode(b)
}

/** Compares strings by code point (UTF-8 byte order, as Go compares strings). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    // A surrogate (U+D800..DFFF, an astral code point) sorts after every
    // BMP code point above it in UTF-16 but before none in code points.
    const xs = x >= 0xd800 && x <= 0xdfff
    const ys = y >= 0xd800 && y <= 0xdfff
    if (xs !== ys) return xs ? 1 : -1
    return x < y ? -1 : 1
  }
  return a.length - b.length
}
