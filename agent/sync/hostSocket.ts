// `vt-sync` for processes that `exec` and `spawn` start on this host: a unix socket in the session's directory
// (mode 0700 like the rest of the state dir, so only the agent's user reaches it; no network port) and a
// `bin/vt-sync` next to it that runs the client (vt-sync.mjs) with this Node. One JSON line in, one out; a
// client that disconnects before its answer (killed, exec timed out) leaves its barrier, naming its command.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Participant } from '../../src/protocol/sync.ts'
import { syncOp } from '../../src/protocol/sync.ts'
import type { Logger } from '../service.ts'
import { MAX_SOCKET_PATH, socketRoot } from '../vm/sockets.ts'
import type { SyncEndpoint } from './forwarder.ts'

const client = fileURLToPath(new URL('./vt-sync.mjs', import.meta.url))
const MAX_LINE = 256 * 1024

export interface HostSync {
  socket: string
  binDir: string
  close(): void
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** What the requesting process was started as, for the other parties' messages. */
function commandOf(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
    const text = argv.join(' ')
    return text.length > 80 ? `${text.slice(0, 80)}…` : text
  } catch {
    return '?'
  }
}

export async function listenHostSync(
  dir: string,
  host: string,
  endpoint: SyncEndpoint,
  log: Logger,
): Promise<HostSync> {
  const binDir = join(dir, 'bin')
  mkdirSync(binDir, { recursive: true, mode: 0o700 })
  const wrapper = join(binDir, 'vt-sync')
  writeFileSync(wrapper, `#!/bin/sh\nexec ${shq(process.execPath)} ${shq(client)} "$@"\n`)
  chmodSync(wrapper, 0o755)
  // A socket path must fit in 108 bytes: under a long state dir, use a short private dir of its own.
  const inSession = join(dir, 'sync.sock')
  const shortDir = inSession.length > MAX_SOCKET_PATH ? mkdtempSync(join(socketRoot(), 'sync-')) : undefined
  const socket = shortDir ? join(shortDir, 'sync.sock') : inSession
  rmSync(socket, { force: true })
  const server = net.createServer(conn => serve(conn, host, endpoint, log))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socket, () => resolve())
  }).catch(e => {
    if (shortDir) rmSync(shortDir, { recursive: true, force: true })
    throw e
  })
  chmodSync(socket, 0o600)
  return {
    socket,
    binDir,
    close: () => {
      server.close()
      rmSync(socket, { force: true })
      if (shortDir) rmSync(shortDir, { recursive: true, force: true })
    },
  }
}

function serve(conn: net.Socket, host: string, endpoint: SyncEndpoint, log: Logger): void {
  let buf = ''
  let done = false
  conn.setEncoding('utf8')
  conn.on('error', () => {})
  const answer = (reply: unknown) => {
    done = true
    conn.end(`${JSON.stringify(reply)}\n`)
  }
  conn.on('data', (chunk: string) => {
    if (done) return
    buf += chunk
    if (buf.length > MAX_LINE) return answer({ ok: false, code: 'error', message: 'request too large' })
    const nl = buf.indexOf('\n')
    if (nl < 0) return
    done = true
    let raw: { request?: unknown; pid?: unknown; ppid?: unknown }
    try {
      raw = JSON.parse(buf.slice(0, nl))
    } catch {
      return answer({ ok: false, code: 'error', message: 'request is not JSON' })
    }
    const parsed = syncOp.safeParse(raw.request)
    if (!parsed.success) {
      const detail = parsed.error.issues.map(i => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ')
      return answer({ ok: false, code: 'error', message: `invalid request: ${detail}` })
    }
    const ppid = Number(raw.ppid) || 0
    const from: Participant = { kind: 'host', host, label: `host ${host}: \`${commandOf(ppid)}\` (pid ${ppid})` }
    const call = endpoint.request(from, parsed.data)
    const onClose = () => call.cancel(`${from.label} exited or was killed`)
    conn.once('close', onClose)
    void call.reply.then(reply => {
      conn.off('close', onClose)
      if (!conn.destroyed) conn.end(`${JSON.stringify(reply)}\n`)
    })
    log.info('vt-sync', { from: from.label, op: parsed.data.op })
  })
}
