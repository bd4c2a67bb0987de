#!/usr/bin/env node
// vt-sync on a host: joins the barriers and keys of the vt run that started this process (through the agent's
// unix socket in $VT_SYNC_SOCKET). Plain JavaScript so that it starts without a loader.
//   vt-sync barrier NAME N [--timeout S]   wait until N parties arrived (spec code, host scripts, guests)
//   vt-sync send KEY VALUE                 share VALUE under KEY
//   vt-sync wait KEY [--timeout S]         print the latest value of KEY, waiting until one is shared
//   vt-sync wait-all KEY N [--timeout S]   print every value of KEY (one a line) once N were shared
//   vt-sync role                           print "<role> <index>" of this host ($VT_ROLE $VT_ROLE_INDEX)
// Exit codes: 0 released / value printed, 1 error (barrier broken, a party died), 2 timed out, 64 usage.
import net from 'node:net'

const USAGE =
  'usage: vt-sync barrier NAME N [--timeout S] | send KEY VALUE | wait KEY [--timeout S] | wait-all KEY N [--timeout S] | role'

function fail(message, code) {
  process.stderr.write(`vt-sync: ${message}\n`)
  process.exit(code)
}

function parse(args) {
  const rest = []
  let timeoutMs
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    const t = a === '--timeout' ? args[++i] : a.startsWith('--timeout=') ? a.slice(10) : undefined
    if (t === undefined) {
      rest.push(a)
      continue
    }
    const s = Number(t)
    if (!Number.isFinite(s) || s < 0) fail(`--timeout wants seconds, got ${JSON.stringify(t)}\n${USAGE}`, 64)
    timeoutMs = Math.round(s * 1000)
  }
  const [op, a, b, ...extra] = rest
  const count = (v, what) => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 1)
      fail(`${what} must be a positive integer, got ${JSON.stringify(v)}\n${USAGE}`, 64)
    return n
  }
  const need = ok => ok || fail(USAGE, 64)
  // The same rule as SYNC_NAME in src/protocol/sync.ts: a bad name is a usage error, as in guests.
  if (a !== undefined && op !== 'role' && !/^[A-Za-z0-9._:@/+-]{1,128}$/.test(a))
    fail(`${JSON.stringify(a)} is not a valid name: 1-128 characters of A-Z a-z 0-9 . _ : @ / + -`, 64)
  switch (op) {
    case 'barrier':
      need(a && b && !extra.length)
      return { op: 'barrier', name: a, parties: count(b, 'N'), ...(timeoutMs !== undefined ? { timeoutMs } : {}) }
    case 'send':
      need(a && b !== undefined && !extra.length)
      return { op: 'send', key: a, value: b }
    case 'wait':
      need(a && b === undefined)
      return { op: 'wait', key: a, ...(timeoutMs !== undefined ? { timeoutMs } : {}) }
    case 'wait-all':
      need(a && b && !extra.length)
      return { op: 'waitAll', key: a, count: count(b, 'N'), ...(timeoutMs !== undefined ? { timeoutMs } : {}) }
    case 'role':
      need(a === undefined)
      return { op: 'role' }
    default:
      return fail(USAGE, 64)
  }
}

const request = parse(process.argv.slice(2))
if (request.op === 'role' && process.env.VT_ROLE) {
  process.stdout.write(`${process.env.VT_ROLE} ${process.env.VT_ROLE_INDEX ?? 0}\n`)
  process.exit(0)
}
const path = process.env.VT_SYNC_SOCKET
if (!path) fail('VT_SYNC_SOCKET is not set: run me through host.exec or host.spawn of a vt test', 1)
const conn = net.createConnection({ path })
let answer = ''
conn.setEncoding('utf8')
conn.on('error', e => fail(`cannot reach the vt agent at ${path}: ${e.message}`, 1))
conn.on('connect', () => conn.write(`${JSON.stringify({ request, pid: process.pid, ppid: process.ppid })}\n`))
conn.on('data', d => (answer += d))
conn.on('end', () => {
  let reply
  try {
    reply = JSON.parse(answer)
  } catch {
    fail('the agent closed the connection without an answer', 1)
  }
  if (!reply.ok) fail(reply.message, reply.code === 'timeout' ? 2 : 1)
  if (reply.values) process.stdout.write(reply.values.map(v => `${v}\n`).join(''))
  else if (reply.value !== undefined) process.stdout.write(`${reply.value}\n`)
  process.exit(0)
})
