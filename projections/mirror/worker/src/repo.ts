// Repo CARs from the mirror's blocks, block for block as pdslog's
// api/sync writes them: the whole repo (commit.ExportCAR), the blocks
// written since a rev (writtenSince and exportAdded), and a record's proof.

import { CarStream } from './car'
import { type Env, Forward } from './env'
import { decodeNode, rootLayer, search } from './mst'
import type { Blocks } from './store'

// How many blocks one read fetches ahead of the walk.
const WINDOW = 990

// getRepo since: the most commits after since answered here.
const MAX_SINCE_COMMITS = 500

interface Item {
  cid: string
  node: boolean
}

/**
 * The whole repo: the commit block, then every MST node in depth-first
 * pre-order, each followed by the records it holds (a record held under
 * two keys is sent twice, as pdslog does). Blocks are read ahead of the
 * walk, WINDOW at a time, and dropped once written.
 */
export async function exportFull(blocks: Blocks, car: CarStream, commit: string, data: string): Promise<void> {
  await car.put(commit, await blocks.get(commit))
  const stack: Item[] = [{ cid: data, node: true }]
  while (stack.length > 0) {
    if (!blocks.has(stack[stack.length - 1].cid)) {
      const ahead: string[] = []
      for (let i = stack.length - 1; i >= 0 && ahead.length < WINDOW; i--) {
        if (!blocks.has(stack[i].cid)) ahead.push(stack[i].cid)
      }
      await blocks.load(ahead)
    }
    const it = stack.pop()!
    const b = blocks.take(it.cid)
    await car.put(it.cid, b)
    if (!it.node) continue
    const n = decodeNode(b)
    for (let i = n.kids.length - 1; i >= 0; i--) {
      const k = n.kids[i]
      if (k !== null) stack.push({ cid: k, node: true })
    }
    for (let i = n.vals.length - 1; i >= 0; i--) stack.push({ cid: n.vals[i], node: false })
  }
}

/**
 * The blocks written after since, as exportAdded writes them: the commit
 * block, then the current tree walked from the root in export order,
 * entering only nodes in added (a node not written since since heads a
 * subtree that was not either), each written once.
 */
export async function exportAdded(blocks: Blocks, car: CarStream, commit: string, data: string, added: Set<string>): Promise<void> {
  await car.put(commit, await blocks.get(commit))
  added.delete(commit)
  await walkAdded(blocks, car, data, added)
}

async function walkAdded(blocks: Blocks, car: CarStream, cid: string, added: Set<string>): Promise<void> {
  if (!added.has(cid)) return
  added.delete(cid)
  const b = await blocks.get(cid)
  await car.put(cid, b)
  const n = decodeNode(b)
  await blocks.load([...n.vals, ...n.kids].filter((c): c is string => c !== null && added.has(c)))
  for (const v of n.vals) {
    if (!added.has(v)) continue
    added.delete(v)
    await car.put(v, await blocks.get(v))
  }
  for (const k of n.kids) if (k !== null) await walkAdded(blocks, car, k, added)
}

/** A repo head as the mirror records it. */
export interface Head {
  commit: string
  rev: string
  data: string
  seq: number
}

/**
 * writtenSince: the CIDs of the blocks the repo's commits after since (up
 * to head) added to its tree, or null when the whole repo must be sent
 * (since is older than the repo's first head, or a #sync after since
 * moved the repo to a tree its commits do not lead to). Revs compare as
 * strings; the heads are commit_log and sync_log.
 */
export async function writtenSince(env: Env, blocks: Blocks, did: string, head: Head, since: string): Promise<Set<string> | null> {
  const added = new Set<string>()
  if (since >= head.rev) return added
  const [cb, sb] = await env.DB.batch([
    env.DB.prepare('SELECT seq, data FROM commit_log WHERE did = ? AND rev <= ? ORDER BY rev DESC, seq DESC LIMIT 1').bind(did, since),
    env.DB.prepare('SELECT seq, data_cid FROM sync_log WHERE did = ? AND rev <= ? ORDER BY rev DESC, seq DESC LIMIT 1').bind(did, since),
  ])
  const c0 = (cb.results as Record<string, unknown>[])[0]
  const s0 = (sb.results as Record<string, unknown>[])[0]
  if (!c0 && !s0) return null
  let baseSeq: number
  let data: string
  if (c0 && (!s0 || Number(c0.seq) > Number(s0.seq))) {
    baseSeq = Number(c0.seq)
    data = dataOf(c0.data)
  } else {
    baseSeq = Number(s0!.seq)
    data = s0!.data_cid as string
  }
  const [ca, sa] = await env.DB.batch([
    env.DB.prepare('SELECT seq, rev, cid, data FROM commit_log WHERE did = ? AND seq > ? AND seq <= ? ORDER BY seq').bind(did, baseSeq, head.seq),
    env.DB.prepare('SELECT seq, rev, cid, data_cid FROM sync_log WHERE did = ? AND seq > ? AND seq <= ? ORDER BY seq').bind(did, baseSeq, head.seq),
  ])
  type Ev = { seq: number; rev: string; cid: string; data: string; sync: boolean }
  const evs: Ev[] = []
  for (const r of ca.results as Record<string, unknown>[]) {
    evs.push({ seq: Number(r.seq), rev: r.rev as string, cid: r.cid as string, data: dataOf(r.data), sync: false })
  }
  for (const r of sa.results as Record<string, unknown>[]) {
    evs.push({ seq: Number(r.seq), rev: r.rev as string, cid: r.cid as string, data: r.data_cid as string, sync: true })
  }
  evs.sort((a, b) => a.seq - b.seq)
  // Each commit is a walk of the nodes it changed, a few reads each: far
  // behind, the origin (which replays its log) answers sooner.
  if (evs.length > MAX_SINCE_COMMITS) throw new Forward(evs.length + ' commits since ' + since)
  for (const ev of evs) {
    if (ev.rev <= since) {
      data = ev.data
      continue
    }
    if (ev.sync) {
      if (ev.data !== data) return null
      added.add(ev.cid)
      continue
    }
    added.add(ev.cid)
    await diff(blocks, data, ev.data, added)
    data = ev.data
  }
  return added
}

/** The data root (MST) of a signed commit as commit_log holds it (JSON). */
function dataOf(json: unknown): string {
  const c = JSON.parse(json as string) as { data?: { $link?: unknown } }
  const d = c?.data?.$link
  if (typeof d !== 'string') throw new Forward('a commit_log row without a data link')
  return d
}

/**
 * Adds to added what a commit from tree oldRoot to tree newRoot wrote, as
 * pdslog's addCommit finds by replaying the commit's ops: the nodes of the
 * new tree that are not in the old one (those it re-encoded), and the
 * records whose key had another value (or none) before. The two trees are
 * walked together a layer at a time from the top (a subtree is always one
 * layer below its parent), skipping the subtrees they share.
 */
export async function diff(blocks: Blocks, oldRoot: string, newRoot: string, added: Set<string>): Promise<void> {
  if (oldRoot === newRoot) return
  await blocks.load([oldRoot, newRoot])
  const newAt = new Map<number, string[]>()
  const oldAt = new Map<number, string[]>()
  const ln = await rootLayer(decodeNode(await blocks.get(newRoot)))
  const lo = await rootLayer(decodeNode(await blocks.get(oldRoot)))
  newAt.set(ln, [newRoot])
  oldAt.set(lo, [oldRoot])
  const newEntries: [string, string][] = []
  const oldVals = new Map<string, string>()
  for (let layer = Math.max(ln, lo); layer >= 0; layer--) {
    const n = [...new Set(newAt.get(layer) ?? [])]
    const o = [...new Set(oldAt.get(layer) ?? [])]
    const ns = new Set(n)
    const os = new Set(o)
    const nOnly = n.filter((c) => !os.has(c))
    const oOnly = o.filter((c) => !ns.has(c))
    await blocks.load([...nOnly, ...oOnly])
    const below = (m: Map<number, string[]>, kids: (string | null)[]) => {
      for (const k of kids) {
        if (k === null) continue
        const l = m.get(layer - 1)
        if (l) l.push(k)
        else m.set(layer - 1, [k])
      }
    }
    for (const c of nOnly) {
      added.add(c)
      const node = decodeNode(await blocks.get(c))
      node.keys.forEach((k, i) => newEntries.push([k, node.vals[i]]))
      below(newAt, node.kids)
    }
    for (const c of oOnly) {
      const node = decodeNode(await blocks.get(c))
      node.keys.forEach((k, i) => oldVals.set(k, node.vals[i]))
      below(oldAt, node.kids)
    }
  }
  for (const [k, v] of newEntries) if (oldVals.get(k) !== v) added.add(v)
}

/**
 * The proof of key in the tree data (mst Proof): each node on the search
 * path of key from the root, down to the node holding it or to the gap
 * without a subtree, and the record's CID when it is there.
 */
export async function proof(blocks: Blocks, data: string, key: string): Promise<{ nodes: [string, Uint8Array][]; value: string | null }> {
  const nodes: [string, Uint8Array][] = []
  let cid: string | null = data
  while (cid !== null) {
    const b = await blocks.get(cid)
    nodes.push([cid, b])
    const n = decodeNode(b)
    const [i, found] = search(n, key)
    if (found) return { nodes, value: n.vals[i] }
    cid = n.kids[i]
  }
  return { nodes, value: null }
}
