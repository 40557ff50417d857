// Test harness only: the Cloudflare APIs pdslog's mirror writes through,
// over the same D1 database and R2 bucket the Worker reads: D1's REST API
// (the D1 emulator's worker, projections/mirror/d1/d1test/worker.mjs) under
// /client/v4/, and R2's S3 API (s3.mjs) everywhere else.
import d1 from '../../d1/d1test/worker.mjs'
import { s3 } from './s3.mjs'

export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname.startsWith('/client/v4/')) return d1.fetch(request, env)
    return s3(request, env)
  },
}
