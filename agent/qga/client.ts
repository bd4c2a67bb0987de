// A client of qemu-guest-agent (QGA) over the host end of a VM's virtio-serial port org.qemu.guest_agent.0.
// QGA speaks QMP's JSON lines but has no greeting, and the channel outlives both ends: bytes written while no
// agent listened, and answers to requests whose caller gave up, arrive later. So before talking (and after
// any timeout) the client resynchronizes: a 0xFF byte resets the agent's parser, and `guest-sync-delimited`
// with a fresh id is answered by 0xFF + {"return": id}; everything before that answer is stale and dropped.
// Requests are sent one at a time: the agent answers them in order and the next answer is the current one's.
import { randomInt } from 'node:crypto'
import type net from 'node:net'
import { connectUnix } from '../vm/guest.ts'

export class QgaError extends Error {
  override name = 'QgaError'
  constructor(
    message: string,
    /** 'timeout', 'closed' or 'command' (the agent returned an error). */
    readonly code: 'timeout' | 'closed' | 'command',
    /** The agent's error class, for 'command'. */
    readonly errorClass?: string,
  ) {
    super(message)
  }
}

interface Waiter {
  accept: (msg: Record<string, unknown>) => boolean
}

const DELIMITER = 0xff

export class QgaClient {
  private socket: net.Socket | undefined
  private buf: Buffer = Buffer.alloc(0)
  private waiter: Waiter | undefined
  private synced = false
  private queue: Promise<unknown> = Promise.resolve()
  private closedReason: string | undefined

  constructor(
    private readonly path: string,
    /** Names the VM in errors: "VM a on host h1". */
    private readonly label: string,
  ) {}

  /** Connects to the socket QEMU serves (retrying while QEMU creates it). */
  async connect(signal: AbortSignal, timeoutMs = 10_000): Promise<void> {
    const s = await connectUnix(this.path, signal, timeoutMs)
    this.socket = s
    s.on('data', chunk => this.onData(chunk))
    s.on('error', () => {})
    s.on('close', () => this.close('the guest agent channel closed'))
  }

  get closed(): string | undefined {
    return this.closedReason
  }

  /** Fails the request in flight and every later one with `reason`. */
  close(reason: string): void {
    if (this.closedReason) return
    this.closedReason = reason
    this.socket?.destroy()
    const w = this.waiter
    this.waiter = undefined
    w?.accept({ __closed: reason })
  }

  /**
   * Runs `command` and resolves with its `return`. Resynchronizes first when needed; `timeoutMs` covers both.
   * `noReply`: commands that answer nothing on success (guest-shutdown) resolve once sent.
   */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    opts: { timeoutMs?: number; noReply?: boolean } = {},
  ): Promise<T> {
    const run = () => this.run(command, args, opts.timeoutMs ?? 30_000, opts.noReply ?? false) as Promise<T>
    const p = this.queue.then(run, run)
    this.queue = p.catch(() => {})
    return p
  }

  /** Resolves once the agent answered a sync within `timeoutMs` (readiness; nothing else is sent). */
  sync(timeoutMs: number): Promise<void> {
    const run = async () => {
      this.synced = false
      await this.resync(Date.now() + timeoutMs)
    }
    const p = this.queue.then(run, run)
    this.queue = p.catch(() => {})
    return p
  }

  private async run(command: string, args: unknown, timeoutMs: number, noReply: boolean): Promise<unknown> {
    const deadline = Date.now() + timeoutMs
    if (!this.synced) await this.resync(deadline)
    const msg: Record<string, unknown> = { execute: command }
    if (args !== undefined) msg.arguments = args
    this.write(`${JSON.stringify(msg)}\n`)
    if (noReply) return undefined
    const reply = await this.next(deadline, command, () => true)
    if ('error' in reply) {
      const e = (reply.error ?? {}) as { class?: unknown; desc?: unknown }
      const cls = typeof e.class === 'string' ? e.class : 'GenericError'
      const desc = typeof e.desc === 'string' ? e.desc : ''
      throw new QgaError(`${this.label}: the guest agent refused ${command}: ${cls}: ${desc}`, 'command', cls)
    }
    return reply.return
  }

  private async resync(deadline: number): Promise<void> {
    const id = randomInt(1, 2 ** 31)
    this.buf = Buffer.alloc(0)
    this.write(Buffer.from([DELIMITER]))
    this.write(`${JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } })}\n`)
    await this.next(deadline, 'guest-sync-delimited', m => m.return === id)
    this.synced = true
  }

  private write(data: string | Buffer): void {
    if (this.closedReason) throw new QgaError(`${this.label}: ${this.closedReason}`, 'closed')
    if (!this.socket) throw new QgaError(`${this.label}: the guest agent channel is not connected`, 'closed')
    this.socket.write(data)
  }

  /** The next message accepted by `accept` (others are stale and dropped), or a timeout that forces a resync. */
  private next(
    deadline: number,
    command: string,
    accept: (m: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const ms = Math.max(0, deadline - Date.now())
      const timer = setTimeout(() => {
        this.waiter = undefined
        this.synced = false
        reject(new QgaError(`${this.label}: the guest agent did not answer ${command} within ${ms} ms`, 'timeout'))
      }, ms)
      this.waiter = {
        accept: m => {
          if (typeof m.__closed === 'string') {
            clearTimeout(timer)
            reject(new QgaError(`${this.label}: ${command} failed: ${m.__closed}`, 'closed'))
            return true
          }
          if (!accept(m)) return false
          clearTimeout(timer)
          this.waiter = undefined
          resolve(m)
          return true
        },
      }
      this.parse()
    })
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk
    this.parse()
  }

  /** Hands complete lines to the waiter; a 0xFF drops what came before it; nobody waiting: lines stay. */
  private parse(): void {
    for (;;) {
      if (!this.waiter) return
      const ff = this.buf.lastIndexOf(DELIMITER)
      if (ff >= 0) this.buf = this.buf.subarray(ff + 1)
      const nl = this.buf.indexOf(10)
      if (nl < 0) return
      const line = this.buf.subarray(0, nl).toString('utf8').trim()
      this.buf = this.buf.subarray(nl + 1)
      if (!line) continue
      let msg: unknown
      try {
        msg = JSON.parse(line)
      } catch {
        continue // a half line from before a reset
      }
      if (msg && typeof msg === 'object' && !Array.isArray(msg)) this.waiter.accept(msg as Record<string, unknown>)
    }
  }
}
