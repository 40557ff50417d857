// CAR v1 as pdslog's mst/car writes it: a DAG-CBOR header {roots, version:
// 1} (keys in canonical order, roots as tag-42 links), then sections of
// varint(len(cid)+len(data)) cid data.

import { concat, parseCID, varintBytes } from './bytes'

function head(major: number, n: number): number[] {
  const m = major << 5
  if (n < 24) return [m | n]
  if (n <= 0xff) return [m | 24, n]
  if (n <= 0xffff) return [m | 25, n >> 8, n & 0xff]
  return [m | 26, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
}

const enc = new TextEncoder()

/** The length-prefixed CAR header naming roots (binary CIDs). */
export function header(roots: Uint8Array[]): Uint8Array {
  const body: number[] = [...head(5, 2), ...head(3, 5), ...enc.encode('roots'), ...head(4, roots.length)]
  for (const r of roots) {
    body.push(...head(6, 42), ...head(2, r.length + 1), 0, ...r)
  }
  body.push(...head(3, 7), ...enc.encode('version'), ...head(0, 1))
  return new Uint8Array([...varintBytes(body.length), ...body])
}

/** One block's section. */
export function section(cid: string, data: Uint8Array): Uint8Array {
  const c = parseCID(cid)
  if (!c) throw new Error('car: bad CID ' + cid)
  return concat([new Uint8Array(varintBytes(c.length + data.length)), c, data])
}

/** A whole CAR in memory. */
export function marshal(roots: string[], blocks: [string, Uint8Array][]): Uint8Array {
  const parts = [header(roots.map((r) => parseCID(r)!))]
  for (const [c, d] of blocks) parts.push(section(c, d))
  return concat(parts)
}

/**
 * A CAR written to a stream as it is built, in chunks of about 64 KiB (the
 * bytes are the same however they are cut).
 */
export class CarStream {
  readonly readable: ReadableStream<Uint8Array>
  private writer: WritableStreamDefaultWriter<Uint8Array>
  private buf: Uint8Array[] = []
  private size = 0

  constructor() {
    const ts = new TransformStream<Uint8Array, Uint8Array>()
    this.readable = ts.readable
    this.writer = ts.writable.getWriter()
  }

  async start(roots: string[]): Promise<void> {
    await this.push(header(roots.map((r) => parseCID(r)!)))
  }

  async put(cid: string, data: Uint8Array): Promise<void> {
    await this.push(section(cid, data))
  }

  private async push(b: Uint8Array): Promise<void> {
    this.buf.push(b)
    this.size += b.length
    if (this.size >= 64 << 10) await this.flush()
  }

  private async flush(): Promise<void> {
    if (this.size === 0) return
    const chunk = concat(this.buf)
    this.buf = []
    this.size = 0
    await this.writer.write(chunk)
  }

  async close(): Promise<void> {
    await this.flush()
    await this.writer.close()
  }

  /** Ends the stream in error: the client sees a truncated CAR. */
  async abort(err: unknown): Promise<void> {
    await this.writer.abort(err)
  }
}
