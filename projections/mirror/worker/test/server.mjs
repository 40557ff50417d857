// Runs the Worker under Miniflare (real workerd, D1's SQLite, R2 storage)
// as wrangler.jsonc configures it (read by wrangler's own config reader),
// built from src/ as wrangler builds it (esbuild), beside a harness worker (harness.mjs) that serves the APIs
// pdslog's mirror writes through (D1 REST, R2's S3 API) over the same
// database and bucket. For pdslog's Go tests (worker_test.go).
//
// Settings (environment):
//   EDGE_ORIGIN          the origin pdslog's URL (the Worker's ORIGIN)
//   EDGE_VARS            JSON object of further vars overriding wrangler.jsonc's
//   EDGE_DATABASE        D1 database id (required)
//   EDGE_BUCKET          R2 bucket name (required)
//   EDGE_TOKEN, EDGE_ACCOUNT  what D1 API requests must carry and name
//   EDGE_S3_KEY          the access key id S3 requests must be signed with
//   EDGE_PERSIST         directory keeping D1 and R2; unset = in memory
//
// When ready it prints exactly one line on stdout,
//
//     EDGE_LISTENING http://127.0.0.1:PORT http://127.0.0.1:PORT2 http://127.0.0.1:PORT3
//
// the Worker's URL (behind Miniflare's entry, as wrangler dev serves it),
// the harness's, and the Worker's own workerd socket. It exits on SIGTERM/SIGINT and when
// its stdin closes.
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'
import { Miniflare, Log, LogLevel } from 'miniflare'
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from 'wrangler'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

// wrangler.jsonc, read by wrangler itself, and the Miniflare options
// wrangler dev would run the Worker with (bindings, compatibility).
const cfg = unstable_readConfig({ config: join(root, 'wrangler.jsonc') })
const { workerOptions } = unstable_getMiniflareWorkerOptions(join(root, 'wrangler.jsonc'))
const need = (name) => {
  const v = process.env[name]
  if (!v) {
    process.stderr.write(`edge: ${name} is not set\n`)
    process.exit(2)
  }
  return v
}
const database = need('EDGE_DATABASE')
const bucket = need('EDGE_BUCKET')
const d1 = cfg.d1_databases[0]
const r2 = cfg.r2_buckets[0]
// The schema the D1 binding names must be the project's migrations.
readFileSync(join(resolve(root, d1.migrations_dir), '0001_init.sql'))

async function bundle(entry, conditions) {
  const out = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'neutral',
    conditions,
    mainFields: ['browser', 'module', 'main'],
    write: false,
    logLevel: 'silent',
  })
  return out.outputFiles[0].text
}

const edge = await bundle(cfg.main, ['workerd', 'worker', 'browser'])
const harness = await bundle(join(here, 'harness.mjs'), [])
const persist = process.env.EDGE_PERSIST || false

const mf = new Miniflare({
  host: '127.0.0.1',
  port: 0,
  cf: false,
  d1Persist: persist && join(persist, 'd1'),
  r2Persist: persist && join(persist, 'r2'),
  log: new Log(process.env.EDGE_LOG === '1' ? LogLevel.DEBUG : LogLevel.WARN),
  workers: [
    {
      name: 'edge',
      modules: [{ type: 'ESModule', path: 'index.js', contents: edge }],
      compatibilityDate: workerOptions.compatibilityDate,
      compatibilityFlags: workerOptions.compatibilityFlags,
      // The test's database and bucket in place of the deployed ones.
      d1Databases: { [d1.binding]: database },
      r2Buckets: { [r2.binding]: bucket },
      bindings: { ...workerOptions.bindings, ORIGIN: need('EDGE_ORIGIN'), ...JSON.parse(process.env.EDGE_VARS || '{}') },
      unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
    },
    {
      name: 'harness',
      modules: [{ type: 'ESModule', path: 'harness.js', contents: harness }],
      compatibilityDate: '2025-01-01',
      d1Databases: { DB: database },
      r2Buckets: { BUCKET: bucket },
      bindings: {
        DATABASES: JSON.stringify({ [database]: 'DB' }),
        TOKEN: process.env.EDGE_TOKEN || '',
        ACCOUNT: process.env.EDGE_ACCOUNT || '',
        S3_BUCKET: bucket,
        S3_ACCESS_KEY: process.env.EDGE_S3_KEY || '',
      },
      unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
    },
  ],
})

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  try {
    await mf.dispose()
  } finally {
    process.exit(0)
  }
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
if (process.env.EDGE_EXIT_ON_STDIN_EOF !== '0') {
  process.stdin.on('end', stop)
  process.stdin.on('error', stop)
  process.stdin.resume()
}

const url = await mf.ready
const direct = await mf.unsafeGetDirectURL('harness')
const edgeDirect = await mf.unsafeGetDirectURL('edge')
process.stdout.write(`EDGE_LISTENING ${url.origin} ${direct.origin} ${edgeDirect.origin}\n`)
