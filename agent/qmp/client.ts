// The QMP client layer (as in QEMU's python/qemu/qmp/qmp_client.py over protocol.py): connecting with
// retries while QEMU starts, capabilities negotiation, typed commands, and the transcript of everything sent
// and received. Events go to subscribers, to waiters, and into a bounded backlog so a caller can wait for an
// event that may have arrived before it started waiting (see `mark()`). Framing, the greeting and matching
// replies to requests are the protocol layer's (protocol.ts).
import { setTimeout as delay } from 'node:timers/promises'
import type {
  QmpArgs,
  QmpCommandKey,
  QmpEvent,
  QmpExecutor,
  QmpGreeting,
  QmpReturn,
  TranscriptEntry,
} from '../../src/protocol/qmp.ts'
import { QmpConnectError, QmpDisconnectedError, QmpError, QmpEventTimeoutError } from './errors.ts'
import { QmpProtocol, type QmpProtocolHooks } from './protocol.ts'

export interface QmpConnectOptions {
  /** How long to keep trying to connect (the socket may not exist yet while QEMU starts). Default 10 s. */
  connectTimeout?: number
  /** Default per-command timeout. Default 30 s. */
  commandTimeout?: number
  /** Keep at most this many transcript entries (oldest dropped). Default 5000. */
  transcriptLimit?: number
  /** A label used in error messages (e.g. the VM name). */
  label?: string
  /** Stop retrying the connection early, e.g. when the QEMU process has already exited. */
  signal?: AbortSignal
}

export interface ExecuteOptions {
  timeout?: number
}

export interface WaitForEventOptions<D> {
  /** Only events for which this returns true. */
  predicate?: (data: D, event: QmpEvent<D>) => boolean
  /** Default 30 s. */
  timeout?: number
  /** Also match events received after this mark (from `mark()`), not only future ones. */
  since?: number
}

interface EventWaiter {
  match: (ev: QmpEvent) => boolean
  resolve: (ev: QmpEvent) => void
  reject: (err: Error) => void
}

const BACKLOG = 1000

export class QmpClient implements QmpExecutor {
  private protocol!: QmpProtocol
  private readonly listeners = new Set<(ev: QmpEvent) => void>()
  private readonly waiters = new Set<EventWaiter>()
  private readonly backlog: { seq: number; ev: QmpEvent }[] = []
  private readonly entries: TranscriptEntry[] = []
  private dropped = 0
  private seq = 0
  private nextId = 1
  private readonly commandTimeout: number
  private readonly transcriptLimit: number
  private readonly label: string

  private constructor(opts: Required<Pick<QmpConnectOptions, 'commandTimeout' | 'transcriptLimit' | 'label'>>) {
    this.commandTimeout = opts.commandTimeout
    this.transcriptLimit = opts.transcriptLimit
    this.label = opts.label
  }

  /** What the protocol layer reports: events, replies and oddities, into the transcript and to listeners. */
  private hooks(): QmpProtocolHooks {
    return {
      event: ev => this.dispatchEvent(ev),
      reply: (id, reply, ms) =>
        this.record(
          reply.ok
            ? { at: Date.now(), dir: 'in', id, ok: true, return: reply.return, ms }
            : { at: Date.now(), dir: 'in', id, ok: false, error: reply.error, ms },
        ),
      note: text => this.note(text),
    }
  }

  /** The server's greeting (QEMU's version and capabilities). */
  get greeting(): QmpGreeting {
    return this.protocol.greeting
  }

  /** Resolves when the connection is gone, with the reason. */
  get closed(): Promise<string> {
    return this.protocol.closed
  }

  /** Connects to a QMP unix socket, reads the greeting and negotiates capabilities. */
  static async connect(path: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const connectTimeout = options.connectTimeout ?? 10_000
    const label = options.label ?? path
    const deadline = Date.now() + connectTimeout
    let lastError: Error | undefined
    for (;;) {
      if (options.signal?.aborted) {
        throw new QmpConnectError(
          `QMP ${label}: gave up connecting to ${path}: ${String(options.signal.reason ?? 'aborted')}`,
        )
      }
      try {
        const client = new QmpClient({
          commandTimeout: options.commandTimeout ?? 30_000,
          transcriptLimit: options.transcriptLimit ?? 5000,
          label,
        })
        client.protocol = await QmpProtocol.open(path, Math.max(500, deadline - Date.now()), client.hooks(), label)
        void client.protocol.closed.then(reason => client.shutdown(reason))
        client.note(`connected to ${path}, QEMU ${client.version}`)
        try {
          await client.execute('qmp_capabilities', undefined, { timeout: Math.max(1000, deadline - Date.now()) })
        } catch (err) {
          client.close()
          throw new QmpConnectError(`QMP ${label}: capabilities negotiation failed: ${(err as Error).message}`)
        }
        return client
      } catch (err) {
        if (err instanceof QmpConnectError && !err.retry) throw err
        lastError = err as Error
        const code = (err as NodeJS.ErrnoException).code
        const retriable = code === 'ENOENT' || code === 'ECONNREFUSED' || (err instanceof QmpConnectError && err.retry)
        if (!retriable || Date.now() >= deadline) {
          throw new QmpConnectError(
            `QMP ${label}: cannot connect to ${path} within ${connectTimeout} ms: ${lastError.message}`,
          )
        }
        // QEMU makes its socket ~30 ms after the spawn: a short poll is most of a restore's wait otherwise.
        await delay(2)
      }
    }
  }

  /** QEMU's version from the greeting, e.g. "7.2.0". */
  get version(): string {
    return versionText(this.greeting)
  }

  get isClosed(): boolean {
    return this.protocol.closedWhy !== undefined
  }

  /** Sends any command. Known command names get typed arguments and results. */
  execute<K extends QmpCommandKey>(command: K, args?: QmpArgs<K>, options: ExecuteOptions = {}): Promise<QmpReturn<K>> {
    if (typeof command !== 'string' || command.length === 0) {
      return Promise.reject(new QmpError('QMP execute: the command name must be a non-empty string'))
    }
    if (args !== undefined && (args === null || typeof args !== 'object' || Array.isArray(args))) {
      return Promise.reject(new QmpError(`QMP ${command}: arguments must be an object, got ${JSON.stringify(args)}`))
    }
    const id = `vt-${this.nextId++}`
    if (!this.isClosed) {
      this.record({ at: Date.now(), dir: 'out', id, command, ...(args !== undefined ? { args } : {}) })
    }
    return this.protocol.request(id, command, args, options.timeout ?? this.commandTimeout) as Promise<QmpReturn<K>>
  }

  /** Asks QEMU to exit; resolves once it replied or closed the connection. */
  async quit(): Promise<void> {
    try {
      await this.execute('quit')
    } catch (err) {
      if (!(err instanceof QmpDisconnectedError)) throw err
    }
  }

  // --- events -------------------------------------------------------------------------------------------

  /** A position in the event stream; pass it as `since` to also match events that arrived after it. */
  mark(): number {
    return this.seq
  }

  /** Calls `listener` for every event from now on. Returns an unsubscribe function. */
  onEvent(listener: (ev: QmpEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Events from now on as an async stream; it ends when the connection closes or the loop breaks. */
  async *events(filter?: string | string[]): AsyncGenerator<QmpEvent> {
    const names = filter === undefined ? undefined : new Set(Array.isArray(filter) ? filter : [filter])
    const queue: QmpEvent[] = []
    let wake: (() => void) | undefined
    const off = this.onEvent(ev => {
      if (names && !names.has(ev.event)) return
      queue.push(ev)
      wake?.()
    })
    void this.closed.then(() => wake?.())
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift() as QmpEvent
        if (this.isClosed) return
        await new Promise<void>(resolve => {
          wake = resolve
        })
        wake = undefined
      }
    } finally {
      off()
    }
  }

  /** Resolves with the first matching event; rejects on timeout or when the connection closes first. */
  waitForEvent<D = Record<string, unknown>>(name: string, options: WaitForEventOptions<D> = {}): Promise<QmpEvent<D>> {
    const timeout = options.timeout ?? 30_000
    const match = (ev: QmpEvent) =>
      ev.event === name && (!options.predicate || options.predicate((ev.data ?? {}) as D, ev as QmpEvent<D>))
    if (options.since !== undefined) {
      const found = this.backlog.find(b => b.seq > (options.since as number) && match(b.ev))
      if (found) return Promise.resolve(found.ev as QmpEvent<D>)
    }
    const closedWhy = this.protocol.closedWhy
    if (closedWhy) {
      return Promise.reject(new QmpDisconnectedError(undefined, undefined, `waiting for ${name}: ${closedWhy}`))
    }
    return new Promise((resolve, reject) => {
      const waiter: EventWaiter = {
        match,
        resolve: ev => {
          clearTimeout(timer)
          this.waiters.delete(waiter)
          resolve(ev as QmpEvent<D>)
        },
        reject: err => {
          clearTimeout(timer)
          this.waiters.delete(waiter)
          reject(err)
        },
      }
      const timer = setTimeout(() => waiter.reject(new QmpEventTimeoutError(name, timeout)), timeout)
      this.waiters.add(waiter)
    })
  }

  // --- transcript ---------------------------------------------------------------------------------------

  /** The transcript as text, one line per entry, for attaching to a report. */
  transcriptText(): string {
    const lines = this.entries.map(formatEntry)
    if (this.dropped > 0) lines.unshift(`… ${this.dropped} earlier entries dropped`)
    return `${lines.join('\n')}\n`
  }

  /** Adds a free-text line to the transcript (e.g. "VM started"). */
  note(text: string): void {
    this.record({ at: Date.now(), dir: 'note', text })
  }

  /** Closes the connection; pending commands fail with QmpDisconnectedError. */
  close(): void {
    this.protocol.close()
    this.shutdown(this.protocol.closedWhy ?? 'the QMP client was closed')
  }

  // --- internals ----------------------------------------------------------------------------------------

  private record(entry: TranscriptEntry): void {
    this.entries.push(entry)
    if (this.entries.length > this.transcriptLimit) {
      this.entries.shift()
      this.dropped++
    }
  }

  private dispatchEvent(ev: QmpEvent): void {
    this.seq++
    this.backlog.push({ seq: this.seq, ev })
    if (this.backlog.length > BACKLOG) this.backlog.shift()
    this.record({ at: Date.now(), dir: 'event', event: ev.event, ...(ev.data !== undefined ? { data: ev.data } : {}) })
    for (const w of [...this.waiters]) if (w.match(ev)) w.resolve(ev)
    for (const l of [...this.listeners]) {
      try {
        l(ev)
      } catch (err) {
        this.note(`event listener threw: ${(err as Error).message}`)
      }
    }
  }

  /** The connection is gone: event waiters fail, listeners are dropped (pending commands fail in the protocol). */
  private shutdown(reason: string): void {
    for (const w of [...this.waiters]) {
      w.reject(new QmpDisconnectedError(undefined, undefined, `${reason} [${this.label}]`))
    }
    this.listeners.clear()
  }
}

function versionText(g: QmpGreeting): string {
  const v = g.QMP?.version?.qemu
  return v ? `${v.major}.${v.minor}.${v.micro}` : 'unknown'
}

function formatEntry(e: TranscriptEntry): string {
  const t = new Date(e.at).toISOString().slice(11, 23)
  switch (e.dir) {
    case 'out':
      return `${t} -> ${e.command}${e.args !== undefined ? ` ${JSON.stringify(e.args)}` : ''} (${e.id})`
    case 'in':
      return e.ok
        ? `${t} <- ${e.id} ok ${truncate(JSON.stringify(e.return ?? {}))} (${e.ms} ms)`
        : `${t} <- ${e.id} ${e.error.class}: ${e.error.desc} (${e.ms} ms)`
    case 'event':
      return `${t} <= ${e.event}${e.data !== undefined ? ` ${truncate(JSON.stringify(e.data))}` : ''}`
    case 'note':
      return `${t} -- ${e.text}`
  }
}

function truncate(s: string, n = 500): string {
  return s.length > n ? `${s.slice(0, n)}…` : s
}
