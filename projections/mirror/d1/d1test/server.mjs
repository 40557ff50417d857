// Starts Miniflare (real workerd, real D1) running worker.mjs: Cloudflare's
// D1 REST API on 127.0.0.1, for pdslog's Go tests (see d1test.go).
//
// Settings (environment):
//   D1EMU_PORT       port to listen on; 0 or unset = any free port
//   D1EMU_DATABASES  comma-separated database ids to serve (required)
//   D1EMU_PERSIST    directory keeping the databases; unset = in memory
//   D1EMU_TOKEN      the API token requests must carry (unset: any)
//   D1EMU_ACCOUNT    the account id requests must name (unset: any)
//
// When ready it prints exactly one line on stdout,
//
//     D1EMU_LISTENING http://127.0.0.1:PORT
//
// It exits on SIGTERM/SIGINT and when its stdin closes, so it cannot
// outlive the Go test process that started it.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Miniflare, Log, LogLevel } from 'miniflare'

const here = dirname(fileURLToPath(import.meta.url))
const ids = (process.env.D1EMU_DATABASES || '').split(',').filter((s) => s !== '')
if (ids.length === 0) {
  process.stderr.write('d1emu: D1EMU_DATABASES is empty\n')
  process.exit(2)
}
const databases = {}
const bindings = {}
ids.forEach((id, i) => {
  databases['DB' + i] = id
  bindings[id] = 'DB' + i
})
const persist = process.env.D1EMU_PERSIST || false

const mf = new Miniflare({
  modules: true,
  scriptPath: join(here, 'worker.mjs'),
  compatibilityDate: '2025-01-01',
  cf: false,
  host: '127.0.0.1',
  port: Number(process.env.D1EMU_PORT || 0),
  d1Databases: databases,
  d1Persist: persist,
  bindings: {
    DATABASES: JSON.stringify(bindings),
    TOKEN: process.env.D1EMU_TOKEN || '',
    ACCOUNT: process.env.D1EMU_ACCOUNT || '',
  },
  log: new Log(process.env.D1EMU_LOG === '1' ? LogLevel.DEBUG : LogLevel.WARN),
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
if (process.env.D1EMU_EXIT_ON_STDIN_EOF !== '0') {
  process.stdin.on('end', stop)
  process.stdin.on('error', stop)
  process.stdin.resume()
}

const url = await mf.ready
process.stdout.write(`D1EMU_LISTENING ${url.origin}\n`)
