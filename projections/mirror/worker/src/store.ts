// Reads from the mirror: accounts and repo heads (D1), blocks (D1 rows, or
// R2 objects for blocks too large for a row).

import { base64Decode } from './bytes'
import { type Env, Forward, XrpcError } from './env'

/** An account with its repo head, as the mirror holds it. */
export interface Repo {
  did: string
  handle: string | null
  active: boolean
  status: string | null
  commit: string | null // repo_root: absent until the first commit
  rev: string | null
  data: string | null
  seq: number | null
}

/** SELECT list and FROM clause of a Repo row; the caller adds WHERE. */
export const REPO_SELECT = `SELECT a.did AS did, a.handle AS handle, a.active AS active, a.status AS status,
  r.commit_cid AS commit_cid, r.rev AS rev, r.data_cid AS data_cid, r.seq AS seq
FROM account_state a LEFT JOIN repo_root r ON r.did = a.did`

export function repoOf(row: Record<string, unknown> | null | undefined): Repo | null {
  if (!row) return null
  return {
    did: row.did as string,
    handle: (row.handle as string | null) ?? null,
    active: Number(row.active) === 1,
    status: (row.status as string | null) ?? null,
    commit: (row.commit_cid as string | null) ?? null,
    rev: (row.rev as string | null) ?? null,
    data: (row.data_cid as string | null) ?? null,
    seq: row.seq === null || row.seq === undefined ? null : Number(row.seq),
  }
}

export function repoError(name: string, message: string): XrpcError {
  return new XrpcError(400, name, message)
}

export function repoNotFound(did: string): XrpcError {
  return repoError('RepoNotFound', 'Could not find repo for DID: ' + did)
}

/** Go's %q of a string of printable ASCII; anything else is the origin's to quote. */
export function goQuoteASCII(s: string): string {
  if (!/^[\x20-\x7e]*$/.test(s)) throw new Forward('a value to quote that is not printable ASCII')
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"'
}

/** The lexicon's error for a repo that is not active (api/sync unavailable). */
export function unavailable(did: string, status: string | null): XrpcError {
  switch (status) {
    case 'takendown':
      return repoError('RepoTakendown', 'Repo has been takendown: ' + did)
    case 'suspended':
      return repoError('RepoSuspended', 'Repo has been suspended: ' + did)
    case 'deactivated':
      return repoError('RepoDeactivated', 'Repo has been deactivated: ' + did)
  }
  return repoError('RepoDeactivated', 'Repo is not active (status ' + goQuoteASCII(status ?? '') + '): ' + did)
}

/**
 * The repo of did for a sync read (api/sync available without
 * credentials): RepoNotFound when not hosted (never, or deleted) or
 * without a commit yet, the status error when not active.
 */
export function available(r: Repo | null, did: string): Repo & { commit: string; rev: string; data: string; seq: number } {
  if (!r || r.commit === null || r.rev === null || r.data === null || r.seq === null) throw repoNotFound(did)
  if (!r.active) throw unavailable(did, r.status)
  return r as Repo & { commit: string; rev: string; data: string; seq: number }
}

// D1 allows 100 bound parameters per statement.
const PER_STATEMENT = 99
// Statements per batch (one round trip).
const PER_BATCH = 10

/**
 * Blocks of one repo, read in batches and cached until taken. A block the
 * mirror lacks is Forward (before a response starts) or an error.
 */
export class Blocks {
  private cache = new Map<string, Uint8Array>()
  constructor(
    private env: Env,
    private did: string,
  ) {}

  has(cid: string): boolean {
    return this.cache.has(cid)
  }

  /** Loads every CID of cids not cached yet, in as few requests as they fit. */
  async load(cids: Iterable<string>): Promise<void> {
    const want = [...new Set([...cids].filter((c) => !this.cache.has(c)))]
    if (want.length === 0) return
    const stmts: D1PreparedStatement[] = []
    for (let i = 0; i < want.length; i += PER_STATEMENT) {
      const part = want.slice(i, i + PER_STATEMENT)
      stmts.push(
        this.env.DB.prepare(`SELECT cid, bytes, key FROM blockstore WHERE did = ? AND cid IN (${part.map(() => '?').join(', ')})`).bind(
          this.did,
          ...part,
        ),
      )
    }
    for (let i = 0; i < stmts.length; i += PER_BATCH) {
      await this.absorb(await this.env.DB.batch(stmts.slice(i, i + PER_BATCH)))
    }
    for (const c of want) if (!this.cache.has(c)) throw new Forward('block ' + c + ' is not in the mirror')
  }

  /**
   * A statement reading the blocks of the repo's head (its signed commit
   * and its tree's root), to go in the batch that reads the head; give
   * its result to absorb.
   */
  headStatement(): D1PreparedStatement {
    return this.env.DB.prepare(
      `SELECT cid, bytes, key FROM blockstore WHERE did = ?1 AND cid IN
  (SELECT commit_cid FROM repo_root WHERE did = ?1 UNION ALL SELECT data_cid FROM repo_root WHERE did = ?1)`,
    ).bind(this.did)
  }

  /** Caches the blocks of blockstore rows (cid, bytes, key), reading R2 for those too large for a row. */
  async absorb(results: D1Result[]): Promise<void> {
    const large: [string, string][] = []
    for (const res of results) {
      for (const row of res.results as Record<string, unknown>[]) {
        const cid = row.cid as string
        if (typeof row.bytes === 'string') {
          const b = base64Decode(row.bytes)
          if (!b) throw new Error('mirror: block ' + cid + ' is not base64')
          this.cache.set(cid, b)
        } else if (typeof row.key === 'string') {
          large.push([cid, row.key])
        }
      }
    }
    await Promise.all(
      large.map(async ([cid, key]) => {
        const obj = await this.env.BUCKET.get(key)
        if (obj) this.cache.set(cid, new Uint8Array(await obj.arrayBuffer()))
      }),
    )
  }

  /** Which of cids the mirror has rows for (bytes not read). */
  async present(cids: string[]): Promise<Set<string>> {
    const out = new Set<string>()
    const stmts: D1PreparedStatement[] = []
    for (let i = 0; i < cids.length; i += PER_STATEMENT) {
      const part = cids.slice(i, i + PER_STATEMENT)
      stmts.push(
        this.env.DB.prepare(`SELECT cid FROM blockstore WHERE did = ? AND cid IN (${part.map(() => '?').join(', ')})`).bind(this.did, ...part),
      )
    }
    for (let i = 0; i < stmts.length; i += PER_BATCH) {
      for (const res of await this.env.DB.batch(stmts.slice(i, i + PER_BATCH))) {
        for (const row of res.results as Record<string, unknown>[]) out.add(row.cid as string)
      }
    }
    return out
  }

  /** A block, loaded if need be. */
  async get(cid: string): Promise<Uint8Array> {
    await this.load([cid])
    return this.cache.get(cid)!
  }

  /** A loaded block, dropped from the cache. */
  take(cid: string): Uint8Array {
    const b = this.cache.get(cid)
    if (!b) throw new Error('blocks: ' + cid + ' not loaded')
    this.cache.delete(cid)
    return b
  }
}
