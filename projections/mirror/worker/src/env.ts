// The Worker's bindings (wrangler.jsonc) and the errors its handlers throw.

export interface Env {
  /** The mirror's D1 database (schema: the project's migrations/). */
  DB: D1Database
  /** The mirror's R2 bucket: blobs/DID/CID and blockstore/DID/CID. */
  BUCKET: R2Bucket
  /** The origin pdslog, scheme://host[:port]: everything not served here goes there. */
  ORIGIN: string
  /** pdslog's public URL (its describeRepo serviceEndpoint); unset: describeRepo is forwarded. */
  PUBLIC_URL?: string
  /** pdslog's handle domains (PDS_SERVICE_HANDLE_DOMAINS), comma-separated; unset: /.well-known/atproto-did is forwarded. */
  HANDLE_DOMAINS?: string
  /** pdslog's PDSLOG_CORS_ORIGINS; unset or empty: any origin. */
  CORS_ORIGINS?: string
  /** The mirror's name in mirror_state (pdslog's default: cloudflare). */
  MIRROR_NAME?: string
  /** max-age (seconds) of content-addressed answers (blobs, blocks); default 86400. */
  IMMUTABLE_MAX_AGE?: string
  /** max-age (seconds) of everything else served here (heads, lists, records, errors); default 5. */
  SHORT_MAX_AGE?: string
}

/** An XRPC error, rendered as pdslog renders them. */
export class XrpcError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

/**
 * Thrown when the mirror cannot answer exactly as pdslog would (a parameter
 * pdslog refuses, data the mirror lacks): the request goes to the origin.
 */
export class Forward extends Error {
  constructor(readonly reason: string) {
    super('forward: ' + reason)
  }
}

export function invalidRequest(message: string): XrpcError {
  return new XrpcError(400, 'InvalidRequest', message)
}
