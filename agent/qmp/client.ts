// Our QMP client: one unix-socket connection to a QEMU monitor. Newline-delimited JSON; the server speaks
// first (greeting), we negotiate with qmp_capabilities, then commands carry an id and replies are matched by
// it. Events arrive at any time; they go to subscribers, to waiters, and into a bounded backlog so a caller
// can wait for an event that may have arrived before it started waiting (see `mark()`).

import net from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import type {
  MigrateParameters,
  MigrationCapabilityStatus,
  QmpArgs,
  QmpCommandKey,
  QmpCommands,
  QmpEvent,
  QmpExecutor,
  QmpGreeting,
  QmpReturn,
  TranscriptEntry,
} from '../../src/protocol/qmp.ts'
import {
  commandError,
  QmpConnectError,
  QmpDisconnectedError,
  QmpError,
  QmpEventTimeoutError,
  QmpTimeoutError,
} from './errors.ts'

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

interface Pending {
  command: string
  args: unknown
  sentAt: number
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

interface EventWaiter {
  match: (ev: QmpEvent) => boolean
  resolve: (ev: QmpEvent) => void
  reject: (err: Error) => void
}

const BACKLOG = 1000

export class QmpClient implements QmpExecutor {
  readonly greeting: QmpGreeting
  private readonly socket: net.Socket
  private readonly pending = new Map<string, Pending>()
  private readonly listeners = new Set<(ev: QmpEvent) => void>()
  private readonly waiters = new Set<EventWaiter>()
  private readonly backlog: { seq: number; ev: QmpEvent }[] = []
  private readonly entries: TranscriptEntry[] = []
  private dropped = 0
  private seq = 0
  private nextId = 1
  private closedReason: string | undefined
  private readonly commandTimeout: number
  private readonly transcriptLimit: number
  private readonly label: string
  /** Resolves when the connection is gone, with the reason. */
  readonly closed: Promise<string>

  private constructor(
    socket: net.Socket,
    greeting: QmpGreeting,
    rest: string,
    opts: Required<Pick<QmpConnectOptions, 'commandTimeout' | 'transcriptLimit' | 'label'>>,
  ) {
    this.socket = socket
    this.greeting = greeting
    this.commandTimeout = opts.commandTimeout
    this.transcriptLimit = opts.transcriptLimit
    this.label = opts.label
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
        this.shutdown(this.closedReason)
        resolve(this.closedReason)
      })
    })
    // Lines that arrived together with the greeting, then let the paused socket flow.
    drain()
    socket.resume()
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
        const { socket, greeting, rest } = await openAndGreet(path, Math.max(500, deadline - Date.now()))
        const client = new QmpClient(socket, greeting, rest, {
          commandTimeout: options.commandTimeout ?? 30_000,
          transcriptLimit: options.transcriptLimit ?? 5000,
          label,
        })
        client.note(`connected to ${path}, QEMU ${versionText(greeting)}`)
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
        await delay(20)
      }
    }
  }

  /** QEMU's version from the greeting, e.g. "7.2.0". */
  get version(): string {
    return versionText(this.greeting)
  }

  get isClosed(): boolean {
    return this.closedReason !== undefined
  }

  /** Sends any command. Known command names get typed arguments and results. */
  execute<K extends QmpCommandKey>(command: K, args?: QmpArgs<K>, options: ExecuteOptions = {}): Promise<QmpReturn<K>> {
    if (typeof command !== 'string' || command.length === 0) {
      return Promise.reject(new QmpError('QMP execute: the command name must be a non-empty string'))
    }
    if (args !== undefined && (args === null || typeof args !== 'object' || Array.isArray(args))) {
      return Promise.reject(new QmpError(`QMP ${command}: arguments must be an object, got ${JSON.stringify(args)}`))
    }
    if (this.closedReason) {
      return Promise.reject(new QmpDisconnectedError(command, args, this.closedReason))
    }
    const id = `vt-${this.nextId++}`
    const timeout = options.timeout ?? this.commandTimeout
    const msg: Record<string, unknown> = { execute: command, id }
    if (args !== undefined) msg.arguments = args
    return new Promise<QmpReturn<K>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        this.note(`${command} (${id}) timed out after ${timeout} ms`)
        reject(new QmpTimeoutError(command, args, timeout))
      }, timeout)
      this.pending.set(id, {
        command,
        args,
        sentAt: Date.now(),
        resolve: v => resolve(v as QmpReturn<K>),
        reject,
        timer,
      })
      this.record({ at: Date.now(), dir: 'out', id, command, ...(args !== undefined ? { args } : {}) })
      this.socket.write(`${JSON.stringify(msg)}\n`)
    })
  }

  // --- typed helpers for what vt uses -------------------------------------------------------------------

  queryStatus() {
    return this.execute('query-status')
  }
  stop() {
    return this.execute('stop')
  }
  cont() {
    return this.execute('cont')
  }
  systemPowerdown() {
    return this.execute('system_powerdown')
  }
  systemReset() {
    return this.execute('system_reset')
  }
  /** Asks QEMU to exit; resolves once it replied or closed the connection. */
  async quit(): Promise<void> {
    try {
      await this.execute('quit')
    } catch (err) {
      if (!(err instanceof QmpDisconnectedError)) throw err
    }
  }
  queryMigrate() {
    return this.execute('query-migrate')
  }
  migrate(uri: string, options: { blk?: boolean; inc?: boolean; resume?: boolean } = {}) {
    return this.execute('migrate', { uri, ...options })
  }
  migrateIncoming(uri: string) {
    return this.execute('migrate-incoming', { uri })
  }
  migrateSetCapabilities(capabilities: Record<string, boolean> | MigrationCapabilityStatus[]) {
    const list = Array.isArray(capabilities)
      ? capabilities
      : Object.entries(capabilities).map(([capability, state]) => ({ capability, state }))
    return this.execute('migrate-set-capabilities', { capabilities: list })
  }
  migrateSetParameters(parameters: MigrateParameters) {
    return this.execute('migrate-set-parameters', parameters)
  }
  queryMigrateCapabilities() {
    return this.execute('query-migrate-capabilities')
  }
  queryMigrateParameters() {
    return this.execute('query-migrate-parameters')
  }
  migrateCancel() {
    return this.execute('migrate_cancel')
  }
  migrateStartPostcopy() {
    return this.execute('migrate-start-postcopy')
  }
  pmemsave(val: number, size: number, filename: string) {
    return this.execute('pmemsave', { val, size, filename })
  }
  humanMonitorCommand(commandLine: string) {
    return this.execute('human-monitor-command', { 'command-line': commandLine })
  }
  queryBlock() {
    return this.execute('query-block')
  }
  queryBlockJobs() {
    return this.execute('query-block-jobs')
  }
  driveMirror(args: QmpCommands['drive-mirror'][0]) {
    return this.execute('drive-mirror', args)
  }
  blockdevMirror(args: QmpCommands['blockdev-mirror'][0]) {
    return this.execute('blockdev-mirror', args)
  }
  blockdevAdd(args: Record<string, unknown>) {
    return this.execute('blockdev-add', args)
  }
  blockdevDel(nodeName: string) {
    return this.execute('blockdev-del', { 'node-name': nodeName })
  }
  blockJobCancel(device: string, force = false) {
    return this.execute('block-job-cancel', { device, force })
  }
  blockJobComplete(device: string) {
    return this.execute('block-job-complete', { device })
  }
  nbdServerStart(addr: QmpCommands['nbd-server-start'][0]['addr']) {
    return this.execute('nbd-server-start', { addr })
  }
  nbdServerAdd(device: string, options: { name?: string; writable?: boolean } = {}) {
    return this.execute('nbd-server-add', { device, ...options })
  }
  nbdServerStop() {
    return this.execute('nbd-server-stop')
  }
  deviceAdd(args: QmpCommands['device_add'][0]) {
    return this.execute('device_add', args)
  }
  deviceDel(id: string) {
    return this.execute('device_del', { id })
  }
  queryCpusFast() {
    return this.execute('query-cpus-fast')
  }
  queryCommands() {
    return this.execute('query-commands')
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
        if (this.closedReason) return
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
    if (this.closedReason) {
      return Promise.reject(new QmpDisconnectedError(undefined, undefined, `waiting for ${name}: ${this.closedReason}`))
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

  /** Everything sent and received, oldest first (bounded; see `transcriptLimit`). */
  transcript(): TranscriptEntry[] {
    return [...this.entries]
  }

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
    this.closedReason ??= 'the QMP client was closed'
    this.socket.destroy()
    this.shutdown(this.closedReason)
  }

  // --- internals ----------------------------------------------------------------------------------------

  private record(entry: TranscriptEntry): void {
    this.entries.push(entry)
    if (this.entries.length > this.transcriptLimit) {
      this.entries.shift()
      this.dropped++
    }
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>
    try {
      msg = JSON.parse(line)
    } catch {
      this.note(`unparseable line from QEMU: ${line.slice(0, 200)}`)
      return
    }
    if (typeof msg.event === 'string') {
      this.onEventMessage(msg as unknown as QmpEvent)
      return
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined
    const p = id ? this.pending.get(id) : undefined
    if (!id || !p) {
      this.note(`reply without a pending command: ${line.slice(0, 200)}`)
      return
    }
    this.pending.delete(id)
    clearTimeout(p.timer)
    const now = Date.now()
    if ('error' in msg) {
      const e = (msg.error ?? {}) as { class?: string; desc?: string }
      const error = { class: e.class ?? 'GenericError', desc: e.desc ?? '' }
      this.record({ at: now, dir: 'in', id, ok: false, error, ms: now - p.sentAt })
      p.reject(commandError(p.command, p.args, error.class, error.desc))
    } else {
      this.record({ at: now, dir: 'in', id, ok: true, return: msg.return, ms: now - p.sentAt })
      p.resolve(msg.return)
    }
  }

  private onEventMessage(ev: QmpEvent): void {
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

  private shutdown(reason: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer)
      this.pending.delete(id)
      p.reject(new QmpDisconnectedError(p.command, p.args, `${reason} [${this.label}]`))
    }
    for (const w of [...this.waiters]) {
      w.reject(new QmpDisconnectedError(undefined, undefined, `${reason} [${this.label}]`))
    }
    for (const l of [...this.listeners]) this.listeners.delete(l)
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
