// The Merkle Search Tree of atproto repos (repository spec v3), read from
// node blocks: decoding, key heights, and the walks pdslog's mst package
// makes (proof paths, exports, diffs).

import { cidString } from './bytes'
import { CborError, CborMap, Link, decode } from './cbor'

/** A decoded MST node. kids[0] is "l", kids[i+1] the subtree after keys[i]. */
export interface Node {
  keys: string[]
  vals: string[] // record CIDs
  kids: (string | null)[] // node CIDs
}

function ascii(b: Uint8Array): string {
  let s = ''
  for (const c of b) {
    if (c >= 0x80) throw new CborError('mst: key is not ASCII')
    s += String.fromCharCode(c)
  }
  return s
}

export function decodeNode(data: Uint8Array): Node {
  const v = decode(data)
  if (!(v instanceof CborMap)) throw new CborError('mst: node is not a map')
  const l = v.get('l')
  const e = v.get('e')
  if (!Array.isArray(e) || (l !== null && !(l instanceof Link))) throw new CborError('mst: bad node')
  const node: Node = { keys: [], vals: [], kids: [l instanceof Link ? cidString(l.bytes) : null] }
  let prev = ''
  for (const entry of e) {
    if (!(entry instanceof CborMap)) throw new CborError('mst: bad entry')
    const p = entry.get('p')
    const k = entry.get('k')
    const val = entry.get('v')
    const t = entry.get('t')
    if (typeof p !== 'number' || !(k instanceof Uint8Array) || !(val instanceof Link) || (t !== null && !(t instanceof Link))) {
      throw new CborError('mst: bad entry')
    }
    if (p > prev.length) throw new CborError('mst: bad prefix length')
    // Keys are ASCII ([a-zA-Z0-9_~\-:.] and one '/'); bytes map 1:1.
    const key = prev.slice(0, p) + ascii(k)
    node.keys.push(key)
    node.vals.push(cidString(val.bytes))
    node.kids.push(t instanceof Link ? cidString(t.bytes) : null)
    prev = key
  }
  return node
}

/** The first index i with keys[i] >= key, and whether keys[i] == key. */
export function search(n: Node, key: string): [number, boolean] {
  let lo = 0
  let hi = n.keys.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (n.keys[mid] < key) lo = mid + 1
    else hi = mid
  }
  return [lo, lo < n.keys.length && n.keys[lo] === key]
}

/** The layer of a key: leading zero 2-bit groups of SHA-256(key). */
export async function keyHeight(key: string): Promise<number> {
  const sum = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(key)))
  let zeros = 0
  for (const b of sum) {
    if (b === 0) {
      zeros += 8
      continue
    }
    zeros += Math.clz32(b) - 24
    break
  }
  return zeros >> 1
}

/** The layer of a tree's root node (the empty tree is layer 0). */
export async function rootLayer(root: Node): Promise<number> {
  return root.keys.length > 0 ? keyHeight(root.keys[0]) : 0
}
