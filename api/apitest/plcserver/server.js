// A real did:plc directory (@did-plc/server) with its in-memory database,
// for pdslog's Go tests (see README.md and plcserver.go).
//
// Usage: node server.js [port]    (or PLC_PORT=port; 0 or unset = random)
//
// Listens on 127.0.0.1 only. When ready it prints exactly one line
//
//     PLC_LISTENING <port>
//
// on stdout. It exits on SIGTERM/SIGINT, and when its stdin closes (so it
// cannot outlive the Go test process that started it, even one that was
// killed).
'use strict'

const { PlcServer, Database } = require('@did-plc/server')

async function main() {
  const arg = process.argv[2] ?? process.env.PLC_PORT ?? '0'
  const port = Number(arg)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`bad port ${JSON.stringify(arg)}`)
  }
  const host = process.env.PLC_HOST || '127.0.0.1'

  const plc = PlcServer.create({ db: Database.mock(), port, version: 'pdslog-test' })
  // PlcServer.start() is app.listen(port) on every interface; listen on
  // loopback instead, with the same express app and routes.
  const server = plc.app.listen(port, host)
  plc.server = server
  await new Promise((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  process.stdout.write(`PLC_LISTENING ${server.address().port}\n`)

  const stop = () => {
    server.close()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  if (process.env.PLC_EXIT_ON_STDIN_EOF !== '0') {
    process.stdin.on('end', stop)
    process.stdin.on('error', stop)
    process.stdin.resume()
  }
}

main().catch((err) => {
  process.stderr.write(`plcserver: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
