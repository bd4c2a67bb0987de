// Sessions and leases. A session is what one controller connection creates; it outlives a broken link for
// its lease so that the controller can reconnect and resume it. Everything it creates is recorded in
// <state-dir>/sessions/<id>.json (a journal of JSON lines: one per record added or removed) before the creating call
// returns, and reaped when the lease expires, when
// the controller closes the session, when the agent stops, or at the next start after the agent crashed.
import { randomBytes } from 'node:crypto'
import {
  appendFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { killTree, startTimeOf, waitGone } from '../src/util/proc.ts'
import { removeRecorded } from './confined.ts'
import type { Logger, Reaper, ResourceRecord, ResourceSpec, SessionContext, SessionControl } from './service.ts'

export interface SessionFile {
  id: string
  createdAt: number
  agentPid: number
  records: ResourceRecord[]
}

export class Session implements SessionContext, SessionControl {
  readonly id: string
  readonly secret: string
  readonly dir: string
  readonly leaseMs: number
  readonly signal: AbortSignal
  readonly createdAt = Date.now()
  lastSeen = Date.now()
  closed = false
  /** The current connection, when attached. */
  connection?: SessionConnection
  readonly records = new Map<string, ResourceRecord>()
  private readonly abort = new AbortController()
  private readonly closeFns: (() => Promise<void> | void)[] = []
  private nextResource = 1

  constructor(
    private readonly store: SessionStore,
    readonly log: Logger,
    leaseMs: number,
  ) {
    this.id = randomBytes(9).toString('base64url')
    this.secret = randomBytes(24).toString('base64url')
    this.leaseMs = leaseMs
    this.dir = join(store.sessionsDir, this.id)
    this.signal = this.abort.signal
    mkdirSync(this.dir, { recursive: true, mode: 0o700 })
    this.persistSync()
  }

  touch(): void {
    this.lastSeen = Date.now()
  }

  remainingMs(now = Date.now()): number {
    return Math.max(0, this.lastSeen + this.leaseMs - now)
  }

  async track(resource: ResourceSpec): Promise<string> {
    if (this.closed) throw new Error(`session ${this.id} is closed`)
    const id = `r${this.nextResource++}`
    const record = { ...resource, id, createdAt: Date.now() } as ResourceRecord
    if (record.kind === 'process') {
      const r = record as Extract<ResourceRecord, { kind: 'process' }>
      r.startTime ??= startTimeOf(r.pid)
    }
    this.records.set(id, record)
    this.append({ add: record })
    return id
  }

  async untrack(id: string, options: { reap?: boolean } = {}): Promise<void> {
    const record = this.records.get(id)
    if (!record) return
    if (options.reap) await this.store.reapRecord(record)
    this.records.delete(id)
    if (!this.closed) this.append({ del: id })
  }

  onClose(fn: () => Promise<void> | void): void {
    this.closeFns.push(fn)
  }

  congested(): boolean {
    return this.connection?.congested() ?? false
  }

  /** Ends the session: aborts its work, runs close hooks, reaps every record in reverse order. */
  async close(reason: string, options: { keepConnection?: boolean } = {}): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.log.info('session closing', { session: this.id, reason, resources: this.records.size })
    this.abort.abort(new Error(`session ${this.id} ended: ${reason}`))
    if (!options.keepConnection) this.connection?.close(reason)
    for (const fn of this.closeFns.reverse()) {
      try {
        await fn()
      } catch (e) {
        this.log.warn('session close hook failed', { session: this.id, error: String(e) })
      }
    }
    await this.store.reapAll([...this.records.values()])
    this.records.clear()
    await rm(this.dir, { recursive: true, force: true })
    rmSync(this.file, { force: true })
    this.store.forget(this)
  }

  get file(): string {
    // JSON lines, named .json so that tools (and tests) counting session files keep working.
    return join(this.store.sessionsDir, `${this.id}.json`)
  }

  private snapshot(): string {
    const header: SessionFile = { id: this.id, createdAt: this.createdAt, agentPid: process.pid, records: [] }
    return `${[JSON.stringify(header), ...[...this.records.values()].map(r => JSON.stringify({ add: r }))].join('\n')}\n`
  }

  private journalBytes = 0

  /** Starts the journal with a snapshot, atomically (tmp + rename). */
  private persistSync(): void {
    const text = this.snapshot()
    writeFileSync(`${this.file}.tmp`, text)
    renameSync(`${this.file}.tmp`, this.file)
    this.journalBytes = text.length
  }

  /**
   * Appends one change: a single small write, cheaper than rewriting the file (a torn last line after a crash
   * is skipped on replay). Compacted into a fresh snapshot past 1 MiB.
   */
  private append(entry: { add: ResourceRecord } | { del: string }): void {
    if (this.closed) return
    const line = `${JSON.stringify(entry)}\n`
    if (this.journalBytes + line.length > 1024 * 1024) {
      this.persistSync()
      return
    }
    appendFileSync(this.file, line)
    this.journalBytes += line.length
  }
}

/** Replays a session journal (or a snapshot file of the earlier format) into its records. */
export function readSessionFile(text: string): SessionFile | undefined {
  const lines = text.split('\n').filter(Boolean)
  if (lines.length === 0) return undefined
  let header: SessionFile
  try {
    header = JSON.parse(lines[0]) as SessionFile
  } catch {
    return undefined
  }
  const records = new Map<string, ResourceRecord>()
  for (const r of Array.isArray(header.records) ? header.records : []) records.set(r.id, r)
  for (const line of lines.slice(1)) {
    let entry: { add?: ResourceRecord; del?: string }
    try {
      entry = JSON.parse(line)
    } catch {
      continue // torn write at a crash
    }
    if (entry.add && typeof entry.add.id === 'string') records.set(entry.add.id, entry.add)
    else if (typeof entry.del === 'string') records.delete(entry.del)
  }
  return { ...header, records: [...records.values()] }
}

/** What a session needs from the connection it is attached to. */
export interface SessionConnection {
  close(reason: string): void
  /** Much unsent data is queued on the link. */
  congested(): boolean
  /** Sends a service event (dropped while the link is down). */
  emit(service: string, event: string, payload: unknown): void
  /** Sends a binary frame; rejects when the link is closed. */
  sendFrame(frame: Buffer): Promise<void>
}

export class SessionStore {
  readonly sessionsDir: string
  readonly sessions = new Map<string, Session>()
  private readonly reapers = new Map<string, Reaper>()
  private timer?: NodeJS.Timeout

  constructor(
    readonly stateDir: string,
    private readonly log: Logger,
  ) {
    // Real, so that the paths recorded under it are real (the path reaper relies on that).
    this.sessionsDir = join(realpathSync(stateDir), 'sessions')
    mkdirSync(this.sessionsDir, { recursive: true, mode: 0o700 })
    this.reapers.set('process', async record => {
      const r = record as Extract<ResourceRecord, { kind: 'process' }>
      const pids = [r.pid]
      const n = killTree(r.pid, r.startTime, r.group ?? false)
      if (n > 0) {
        this.log.info('reaped process', { pid: r.pid, label: r.label, signalled: n })
        await waitGone(pids, 2000)
      }
    })
    this.reapers.set('path', async record => {
      const r = record as Extract<ResourceRecord, { kind: 'path' }>
      // Never through a link swapped in on the way (a directory in a root turned into a link out of it).
      const outcome = await removeRecorded(r.path)
      if (outcome === 'redirected') {
        this.log.warn('not reaped: a symlink on its path now leads elsewhere', { path: r.path, label: r.label })
      } else this.log.info('reaped path', { path: r.path, label: r.label })
    })
  }

  registerReaper(kind: string, reaper: Reaper): void {
    this.reapers.set(kind, reaper)
  }

  create(leaseMs: number): Session {
    const s = new Session(this, this.log, leaseMs)
    this.sessions.set(s.id, s)
    return s
  }

  forget(s: Session): void {
    this.sessions.delete(s.id)
  }

  /** Starts the lease clock: sessions silent for longer than their lease are closed and reaped. */
  startLeaseClock(intervalMs = 200): void {
    this.timer = setInterval(() => {
      const now = Date.now()
      for (const s of this.sessions.values()) {
        if (!s.closed && s.remainingMs(now) === 0) void s.close('lease expired')
      }
    }, intervalMs)
    this.timer.unref()
  }

  async reapRecord(record: ResourceRecord): Promise<void> {
    const reaper = this.reapers.get(record.kind)
    if (!reaper) {
      this.log.warn('no reaper for resource kind; left in place', { kind: record.kind, id: record.id })
      return
    }
    try {
      await reaper(record, this.log)
    } catch (e) {
      this.log.warn('reaping failed', { kind: record.kind, id: record.id, error: String(e) })
    }
  }

  /** Reaps in reverse creation order: later resources may depend on earlier ones (a VM on its overlay). */
  async reapAll(records: ResourceRecord[]): Promise<void> {
    for (const record of [...records].reverse()) await this.reapRecord(record)
  }

  /** Reaps what a previous agent run left in the state dir (it crashed, or was killed). */
  async reapLeftovers(): Promise<number> {
    let count = 0
    for (const name of readdirSync(this.sessionsDir)) {
      const path = join(this.sessionsDir, name)
      if (name.endsWith('.tmp')) {
        rmSync(path, { force: true })
        continue
      }
      const ext = '.json'
      if (!name.endsWith(ext)) continue
      let data: SessionFile | undefined
      try {
        data = readSessionFile(readFileSync(path, 'utf8'))
      } catch (e) {
        this.log.warn('unreadable session record; removed', { file: path, error: String(e) })
      }
      if (data && Array.isArray(data.records)) {
        this.log.info('reaping leftovers of a previous run', { session: data.id, resources: data.records.length })
        await this.reapAll(data.records)
        count += data.records.length
      }
      rmSync(path, { force: true })
      rmSync(path.slice(0, -ext.length), { recursive: true, force: true })
    }
    // Session directories whose record is gone.
    for (const name of readdirSync(this.sessionsDir))
      rmSync(join(this.sessionsDir, name), { recursive: true, force: true })
    return count
  }

  async closeAll(reason: string): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    await Promise.all([...this.sessions.values()].map(s => s.close(reason)))
  }
}
