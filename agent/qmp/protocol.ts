// The QMP protocol layer (as in QEMU's python/qemu/qmp: protocol.py and the message half of qmp_client.py):
// one unix-socket connection, newline-delimited JSON, the server's greeting, replies matched to requests by
// id (with per-request timeouts), and events handed to the layer above. It knows nothing of commands'
// meaning, capabilities negotiation, transcripts or event waiting: that is the client (client.ts).
import net from 'node:net'
import type { QmpEvent, QmpGreeting } from '../../src/protocol/qmp.ts'
import { commandError, QmpConnectError, QmpDisconnectedError, QmpTimeoutError } from './errors.ts'

/** What the client layer hears from the connection. */
export interface QmpProtocolHooks {
  event(ev: QmpEvent): void
  /** A reply arrived for request `id` after `ms` (before the request's promise settles). */
  reply(
    id: string,
    reply: { ok: true; return: unknown } | { ok: false; error: { class: string; desc: string } },
    ms: number,
  ): void
  /** Something worth a line in the transcript: an unparseable line, a reply nobody waits for. */
  note(text: string): void
}

interface Pending {
  command: string
  args: unknown
  sentAt: number
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

export class QmpProtocol {
  private readonly pending = new Map<string, Pending>()
  private closedReason: string | undefined
  /** Resolves when the connection is gone, with the reason. */
  readonly closed: Promise<string>

  private constructor(
    private readonly socket: net.Socket,
    readonly greeting: QmpGreeting,
    rest: string,
    private readonly hooks: QmpProtocolHooks,
    private readonly label: string,
  ) {
    let buffer = rest
    const drain = () => {
      let nl = buffer.indexOf('\n')
      while (nl >= 0) {
        const line = buffer.slice(0, nl).trim()
        buffer = buffer.slice(nl + 1)
        if (line) this.onLine(line)
        nl = buffer.indexOf('\n')
      }
    }
    socket.on('data', (chunk: string) => {
      buffer += chunk
      drain()
    })
    this.closed = new Promise(resolve => {
      socket.on('error', (err: NodeJS.ErrnoException) => {
        // A reset is how a QEMU that exits (or is killed) usually looks from here.
        if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return
        this.closedReason ??= `QMP connection error: ${err.message}`
      })
      socket.on('close', () => {
        this.closedReason ??= 'QEMU closed the QMP connection (did it exit?)'
        this.failPending(this.closedReason)
        resolve(this.closedReason)
      })
    })
    // Lines that arrived together with the greeting, then let the paused socket flow.
    drain()
    socket.resume()
  }

  /**
   * Connects and reads the greeting. A connection closed before the greeting is a QmpConnectError with
   * `retry` (QEMU is still starting); socket errors (ENOENT, ECONNREFUSED) are passed through as they are.
   */
  static async open(path: string, timeout: number, hooks: QmpProtocolHooks, label: string): Promise<QmpProtocol> {
    const { socket, greeting, rest } = await openAndGreet(path, timeout)
    return new QmpProtocol(socket, greeting, rest, hooks, label)
  }

  /** Why the connection is gone, or undefined while it is up. */
  get closedWhy(): string | undefined {
    return this.closedReason
  }

  /** Sends one request and resolves with QEMU's `return` (rejects with its error, a timeout, or the close). */
  request(id: string, command: string, args: unknown, timeout: number): Promise<unknown> {
    if (this.closedReason) return Promise.reject(new QmpDisconnectedError(command, args, this.closedReason))
    const msg: Record<string, unknown> = { execute: command, id }
    if (args !== undefined) msg.arguments = args
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        this.hooks.note(`${command} (${id}) timed out after ${timeout} ms`)
        reject(new QmpTimeoutError(command, args, timeout))
      }, timeout)
      this.pending.set(id, { command, args, sentAt: Date.now(), resolve, reject, timer })
      this.socket.write(`${JSON.stringify(msg)}\n`)
    })
  }

  /** Closes the connection; pending requests fail with QmpDisconnectedError. */
  close(reason = 'the QMP client was closed'): void {
    this.closedReason ??= reason
    this.socket.destroy()
    this.failPending(this.closedReason)
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>
    try {
      msg = JSON.parse(line)
    } catch {
      this.hooks.note(`unparseable line from QEMU: ${line.slice(0, 200)}`)
      return
    }
    if (typeof msg.event === 'string') {
      this.hooks.event(msg as unknown as QmpEvent)
      return
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined
    const p = id ? this.pending.get(id) : undefined
    if (!id || !p) {
      this.hooks.note(`reply without a pending command: ${line.slice(0, 200)}`)
      return
    }
    this.pending.delete(id)
    clearTimeout(p.timer)
    const ms = Date.now() - p.sentAt
    if ('error' in msg) {
      const e = (msg.error ?? {}) as { class?: unknown; desc?: unknown }
      const error = {
        class: typeof e.class === 'string' ? e.class : 'GenericError',
        desc: typeof e.desc === 'string' ? e.desc : '',
      }
      this.hooks.reply(id, { ok: false, error }, ms)
      p.reject(commandError(p.command, p.args, error.class, error.desc))
    } else {
      this.hooks.reply(id, { ok: true, return: msg.return }, ms)
      p.resolve(msg.return)
    }
  }

  private failPending(reason: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer)
      this.pending.delete(id)
      p.reject(new QmpDisconnectedError(p.command, p.args, `${reason} [${this.label}]`))
    }
  }
}

/** Opens the socket and reads the greeting line. A connection that closes before greeting is retriable. */
function openAndGreet(
  path: string,
  timeout: number,
): Promise<{ socket: net.Socket; greeting: QmpGreeting; rest: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path })
    let buffer = ''
    const fail = (err: Error) => {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    const timer = setTimeout(() => fail(new QmpConnectError(`no QMP greeting within ${timeout} ms`)), timeout)
    socket.setEncoding('utf8')
    socket.on('error', fail)
    socket.on('close', () => fail(new QmpConnectError('connection closed before the QMP greeting', { retry: true })))
    const onData = (chunk: string) => {
      buffer += chunk
      const nl = buffer.indexOf('\n')
      if (nl < 0) return
      const line = buffer.slice(0, nl).trim()
      let greeting: QmpGreeting
      try {
        greeting = JSON.parse(line)
      } catch {
        fail(new QmpConnectError(`not a QMP server at ${path}: ${line.slice(0, 100)}`))
        return
      }
      if (!greeting || typeof greeting !== 'object' || !('QMP' in greeting)) {
        fail(new QmpConnectError(`not a QMP greeting at ${path}: ${line.slice(0, 100)}`))
        return
      }
      clearTimeout(timer)
      socket.off('data', onData)
      socket.removeAllListeners('error')
      socket.removeAllListeners('close')
      socket.pause()
      resolve({ socket, greeting, rest: buffer.slice(nl + 1) })
    }
    socket.on('data', onData)
  })
}
