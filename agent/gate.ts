// Admission of TCP connections before they authenticate. An unauthenticated peer costs a file descriptor and
// buffers, so it gets little of either: at most `perAgent` such connections at a time (`perPeer` from one
// address), a deadline from TCP accept to a checked token (covering peers that never send an upgrade or a hello),
// and a byte budget for everything it sends before the token is checked (the hello is a few KiB; a half-sent
// 64 MiB frame is cut off after the budget, not buffered).
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from './service.ts'

export interface GateLimits {
  /** Unauthenticated connections at a time, in all. */
  perAgent: number
  /** Unauthenticated connections at a time from one peer address. */
  perPeer: number
  /** Time from TCP accept to a checked token. */
  deadlineMs: number
  /** Bytes a peer may send after the WebSocket upgrade and before its token is checked. */
  maxBytes: number
}

interface Pending {
  socket: Socket
  peer: string
  since: number
  timer: NodeJS.Timeout
  bytes: number
  onData?: (chunk: Buffer) => void
  watched?: Duplex
}

/** The key of a TCP connection: the same for the raw socket and a TLS socket over it. */
export function connectionKey(socket: { remoteAddress?: string; remotePort?: number }): string {
  return `${socket.remoteAddress}:${socket.remotePort}`
}

export class Gate {
  private readonly pending = new Map<string, Pending>()
  private readonly perPeer = new Map<string, number>()
  private turnedAway = 0
  private lastReport = 0

  constructor(
    readonly limits: GateLimits,
    private readonly log: Logger,
  ) {}

  /** Unauthenticated connections now (for tests and the log). */
  get size(): number {
    return this.pending.size
  }

  /** A new TCP connection: admitted under the caps, or closed at once. */
  admit(socket: Socket): void {
    const peer = socket.remoteAddress ?? '?'
    const fromPeer = this.perPeer.get(peer) ?? 0
    if (this.pending.size >= this.limits.perAgent || fromPeer >= this.limits.perPeer) {
      socket.destroy()
      this.turnedAway++
      // One line a second at most: a flood must not fill the log.
      if (Date.now() - this.lastReport > 1000) {
        this.lastReport = Date.now()
        this.log.warn('turned away unauthenticated connections', {
          peer,
          count: this.turnedAway,
          unauthenticated: this.pending.size,
          fromPeer,
          limits: `${this.limits.perAgent} in all, ${this.limits.perPeer} per peer`,
        })
        this.turnedAway = 0
      }
      return
    }
    const key = connectionKey(socket)
    this.release(key) // a port reused before the old socket's close event
    const entry: Pending = {
      socket,
      peer,
      since: Date.now(),
      bytes: 0,
      timer: setTimeout(
        () => this.cut(key, `no authentication within ${this.limits.deadlineMs} ms`),
        this.limits.deadlineMs,
      ),
    }
    this.pending.set(key, entry)
    this.perPeer.set(peer, fromPeer + 1)
    socket.once('close', () => this.release(key))
  }

  /** Counts what arrives on the socket the WebSocket reads (after the upgrade) until the token is checked. */
  watch(socket: Duplex, key: string): void {
    const entry = this.pending.get(key)
    if (!entry) return
    entry.watched = socket
    entry.onData = chunk => {
      entry.bytes += chunk.length
      if (entry.bytes > this.limits.maxBytes)
        this.cut(key, `sent more than ${this.limits.maxBytes} bytes before the hello was accepted`)
    }
    socket.on('data', entry.onData)
  }

  /** The peer's token checked out: no more caps, deadline or budget. */
  authenticated(key: string): void {
    this.release(key)
  }

  private cut(key: string, reason: string): void {
    const entry = this.pending.get(key)
    if (!entry) return
    this.log.warn('closed an unauthenticated connection', {
      remote: key,
      reason,
      afterMs: Date.now() - entry.since,
      bytes: entry.bytes,
    })
    this.release(key)
    entry.watched?.destroy()
    entry.socket.destroy()
  }

  private release(key: string): void {
    const entry = this.pending.get(key)
    if (!entry) return
    this.pending.delete(key)
    clearTimeout(entry.timer)
    if (entry.onData) entry.watched?.off('data', entry.onData)
    const n = (this.perPeer.get(entry.peer) ?? 1) - 1
    if (n > 0) this.perPeer.set(entry.peer, n)
    else this.perPeer.delete(entry.peer)
  }
}
