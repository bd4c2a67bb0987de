// Run records of embedded clusters. Every embedded run writes one record (atomically, before it creates
// anything) naming what it owns: namespaces, the controller veth, its temp dir, its agents and its watcher.
// A record is only ever reaped when its owner (the controller, or the watcher that cleans up after it) is dead,
// by pid + start time. Reaping and claiming a subnet happen under a machine-wide lock, so two runs starting at
// once never take each other's namespaces for a crashed run's.
import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { isSameProcess, readStat } from '../util/proc.ts'
import { deleteNamespace, ip, listNamespaces, NS_PATTERN } from './netns.ts'

export interface ProcessId {
  pid: number
  startTime: number
}

export interface RunRecord {
  runId: string
  /** The controller. */
  pid: number
  /** Required: without it the owner counts as dead and any other run's reaper removes this run while it works. */
  startTime: number | undefined
  /** The process that cleans up when the controller dies without stopping the run. */
  watcher?: ProcessId
  /** 10.213.<octet>.0/24, with network namespaces. */
  octet?: number
  namespaces: string[]
  rootLink?: string
  baseDir?: string
  agents?: ProcessId[]
}

/** Where records live: /run/vt/embedded as root (tmpfs: gone at reboot, like namespaces), else per user in tmp. */
export function runDir(): string {
  return process.getuid?.() === 0 ? '/run/vt/embedded' : join(os.tmpdir(), `vt-embedded-${process.getuid?.() ?? 0}`)
}

export function recordFile(runId: string): string {
  return join(runDir(), `${runId}.json`)
}

/** Atomic (tmp + rename): a concurrent reader never sees half a record. */
export function writeRunRecord(rec: RunRecord): void {
  mkdirSync(runDir(), { recursive: true, mode: 0o700 })
  const tmp = join(runDir(), `.${rec.runId}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`)
  writeFileSync(tmp, JSON.stringify(rec))
  renameSync(tmp, recordFile(rec.runId))
}

export function readRunRecord(runId: string): RunRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordFile(runId), 'utf8')) as RunRecord
  } catch {
    return undefined
  }
}

const alive = (p: ProcessId | undefined) => p !== undefined && isSameProcess(p.pid, p.startTime)

/** The run is someone's: its controller or its watcher still lives. */
export function ownerAlive(rec: RunRecord): boolean {
  return (rec.startTime !== undefined && isSameProcess(rec.pid, rec.startTime)) || alive(rec.watcher)
}

/**
 * Runs `fn` holding the machine-wide embedded-run lock: an abstract unix socket, which the kernel frees when
 * its holder dies, so a crash never leaves a stale lock behind.
 */
export async function withRunLock<T>(fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const name = `\0vt-embedded-runs-${process.getuid?.() ?? 0}`
  const deadline = Date.now() + timeoutMs
  let server: Server
  for (;;) {
    server = createServer()
    const err = await new Promise<NodeJS.ErrnoException | undefined>(resolve => {
      server.once('error', resolve)
      server.listen({ path: name }, () => resolve(undefined))
    })
    if (!err) break
    if (err.code !== 'EADDRINUSE') throw new Error(`cannot take the embedded-run lock: ${err.message}`)
    if (Date.now() > deadline) {
      throw new Error(`another vt run held the embedded-run lock for ${timeoutMs / 1000} s; is one stuck?`)
    }
    await new Promise(r => setTimeout(r, 20 + Math.random() * 40))
  }
  try {
    return await fn()
  } finally {
    await new Promise(r => server.close(r))
  }
}

/** Removes everything a run's record names: agents, namespaces, veth, subnet lock, temp dir, then the record. */
export async function reapRun(rec: RunRecord): Promise<void> {
  for (const a of rec.agents ?? []) {
    if (alive(a)) {
      try {
        process.kill(a.pid, 'SIGKILL')
      } catch {}
    }
  }
  for (const ns of rec.namespaces) await deleteNamespace(ns)
  if (rec.rootLink) await ip('link', 'del', rec.rootLink).catch(() => {})
  if (rec.octet !== undefined) {
    try {
      rmdirSync(join(runDir(), `subnet-${rec.octet}`))
    } catch {}
  }
  if (rec.baseDir) rmSync(rec.baseDir, { recursive: true, force: true })
  rmSync(recordFile(rec.runId), { force: true })
}

/**
 * Reaps runs whose owner is dead, and namespaces of our naming scheme that no record names. Call it holding
 * the lock. Namespaces are listed BEFORE the records are read: a run writes its record before it creates a
 * namespace, so every namespace in the list of a live run has its record by the time we read them; and a run
 * tears its namespaces down and removes its record holding the lock, so none vanishes in between.
 */
export async function reapDeadRuns(log: (m: string) => void = () => {}): Promise<string[]> {
  const namespaces = await listNamespaces()
  const dir = runDir()
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const known = new Set<string>()
  const reaped: string[] = []
  for (const name of readdirSync(dir)) {
    const file = join(dir, name)
    if (name.endsWith('.tmp')) {
      // .<run>.<pid>.<rand>.tmp: half written by a writer that died (a live writer renames it within ms).
      const pid = Number(name.split('.')[2])
      if (!readStat(pid)) rmSync(file, { force: true })
      continue
    }
    if (!name.endsWith('.json')) continue
    let rec: RunRecord
    try {
      rec = JSON.parse(readFileSync(file, 'utf8'))
    } catch {
      rmSync(file, { force: true }) // records are written atomically: an unreadable one is garbage
      continue
    }
    known.add(rec.runId)
    if (ownerAlive(rec)) continue
    log(`vt: cleaning up embedded cluster ${rec.runId} left by a crashed run (pid ${rec.pid})`)
    await reapRun(rec)
    reaped.push(rec.runId)
  }
  for (const ns of namespaces) {
    const m = NS_PATTERN.exec(ns)
    if (m && !known.has(m[1])) {
      log(`vt: removing orphaned namespace ${ns}`)
      await deleteNamespace(ns)
    }
  }
  return reaped
}

/** Takes a free 10.213.X.0/24 (hold the lock): not on any interface, not in a record, not locked by older vt. */
export async function claimSubnet(runId: string): Promise<number> {
  const used = await ip('-4', 'addr')
  const taken = new Set<number>()
  for (const name of readdirSync(runDir())) {
    if (!name.endsWith('.json')) continue
    try {
      const octet = (JSON.parse(readFileSync(join(runDir(), name), 'utf8')) as RunRecord).octet
      if (octet !== undefined) taken.add(octet)
    } catch {}
  }
  for (let attempt = 0; attempt < 254; attempt++) {
    const octet = (Number.parseInt(runId.slice(0, 4), 16) + attempt) % 254
    if (taken.has(octet) || used.includes(`10.213.${octet}.`)) continue
    try {
      mkdirSync(join(runDir(), `subnet-${octet}`)) // what older vt versions lock with
      return octet
    } catch {}
  }
  throw new Error('no free 10.213.X.0/24 subnet for the embedded cluster (254 runs at once?)')
}

/** Reaps crashed runs' leftovers now (the watcher normally does it when a run's controller dies). */
export function cleanLeftovers(log: (m: string) => void = () => {}): Promise<string[]> {
  return withRunLock(() => reapDeadRuns(log))
}
