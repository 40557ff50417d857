// A strict DAG-CBOR decoder: what repo blocks hold (MST nodes, records).
// Anything outside atproto's data model (floats, undefined, other tags,
// indefinite lengths, non-string map keys) throws: the caller then leaves
// the request to the origin.

import { cidLength, decodeUTF8 } from './bytes'

/** A CID link (tag 42): the binary CID, without the 0x00 multibase prefix. */
export class Link {
  constructor(readonly bytes: Uint8Array) {}
}

/** A decoded map, keys in encoded order. */
export class CborMap {
  constructor(readonly entries: [string, Value][]) {}
  get(k: string): Value | undefined {
    for (const [key, v] of this.entries) if (key === k) return v
    return undefined
  }
  has(k: string): boolean {
    return this.entries.some(([key]) => key === k)
  }
}

export type Value = null | boolean | number | bigint | string | Uint8Array | Link | Value[] | CborMap

export class CborError extends Error {}

class Reader {
  off = 0
  constructor(readonly b: Uint8Array) {}

  head(): [number, number | bigint] {
    if (this.off >= this.b.length) throw new CborError('cbor: unexpected end')
    const first = this.b[this.off++]
    const major = first >> 5
    const info = first & 31
    if (info < 24) return [major, info]
    if (major === 7) throw new CborError('cbor: floats are not in the data model')
    let n = 0
    switch (info) {
      case 24:
        n = 1
        break
      case 25:
        n = 2
        break
      case 26:
        n = 4
        break
      case 27:
        n = 8
        break
      default:
        throw new CborError('cbor: unsupported additional information ' + info)
    }
    if (this.off + n > this.b.length) throw new CborError('cbor: unexpected end')
    let v = 0n
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(this.b[this.off++])
    // Minimal encoding only.
    const min = n === 1 ? 24n : n === 2 ? 0x100n : n === 4 ? 0x10000n : 0x100000000n
    if (v < min) throw new CborError('cbor: non-minimal integer')
    return [major, v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v]
  }

  length(arg: number | bigint): number {
    if (typeof arg !== 'number' || arg > this.b.length) throw new CborError('cbor: length too large')
    return arg
  }

  bytes(n: number): Uint8Array {
    if (this.off + n > this.b.length) throw new CborError('cbor: unexpected end')
    const out = this.b.subarray(this.off, this.off + n)
    this.off += n
    return out
  }

  value(depth: number): Value {
    if (depth > 64) throw new CborError('cbor: nested too deep')
    const [major, arg] = this.head()
    switch (major) {
      case 0:
        return arg
      case 1:
        return typeof arg === 'number' && arg < Number.MAX_SAFE_INTEGER ? -1 - arg : -1n - BigInt(arg)
      case 2:
        return this.bytes(this.length(arg))
      case 3:
        return decodeUTF8(this.bytes(this.length(arg)))
      case 4: {
        const n = this.length(arg)
        const out: Value[] = []
        for (let i = 0; i < n; i++) out.push(this.value(depth + 1))
        return out
      }
      case 5: {
        const n = this.length(arg)
        const entries: [string, Value][] = []
        let prev: Uint8Array | null = null
        for (let i = 0; i < n; i++) {
          const [km, karg] = this.head()
          if (km !== 3) throw new CborError('cbor: map key is not a string')
          const kb = this.bytes(this.length(karg))
          // DAG-CBOR: keys sorted by length, then bytes; no duplicates.
          if (prev && !keyBefore(prev, kb)) throw new CborError('cbor: map keys out of order')
          prev = kb
          entries.push([decodeUTF8(kb), this.value(depth + 1)])
        }
        return new CborMap(entries)
      }
      case 6: {
        if (arg !== 42) throw new CborError('cbor: unsupported tag ' + String(arg))
        const [bm, barg] = this.head()
        if (bm !== 2) throw new CborError('cbor: tag 42 is not on bytes')
        const b = this.bytes(this.length(barg))
        if (b.length < 2 || b[0] !== 0) throw new CborError('cbor: bad CID link')
        const c = b.subarray(1)
        if (cidLength(c) !== c.length) throw new CborError('cbor: bad CID link')
        return new Link(c)
      }
      case 7:
        if (arg === 20) return false
        if (arg === 21) return true
        if (arg === 22) return null
        throw new CborError('cbor: unsupported simple value or float')
    }
    throw new CborError('cbor: bad major type')
  }
}

function keyBefore(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return a.length < b.length
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i]
  return false
}

/** Decodes one DAG-CBOR value filling all of b. */
export function decode(b: Uint8Array): Value {
  const r = new Reader(b)
  const v = r.value(0)
  if (r.off !== b.length) throw new CborError('cbor: trailing bytes')
  return v
}
