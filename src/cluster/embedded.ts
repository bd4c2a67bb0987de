// The embedded cluster: the runner's main process starts it before a project's first test and stops it after
// its last. `hosts: N` starts N local `vt agent` processes (random tokens, own state dirs), each in its own
// network namespace when running as root (isolation 'auto' or 'netns'), else all on loopback. A list of
// remote hosts is resolved (tokens read, each agent checked once) and passed on as is.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  type ClusterConfig,
  type ClusterConnectionInfo,
  embeddedCapacity,
  type TokenSource,
} from '../config/cluster.ts'
import type { FullConfig, FullProject } from '../config/types.ts'
import { poolDefsOf } from '../storage/types.ts'
import { isLoopbackHost } from '../util/loopback.ts'
import { startTimeOf } from '../util/proc.ts'
import { registerSecret } from '../util/secrets.ts'
import { AgentClient } from './client.ts'
import { spawnLocalAgent } from './localAgent.ts'
import { createUnderlay, NetnsUnavailableError, type Underlay, underlayNames } from './netns.ts'
import { type NfsServer, poolsWithoutServer, startNfsServer, withEmbeddedServer } from './nfsServer.ts'
import { claimSubnet, type RunRecord, reapDeadRuns, reapRun, withRunLock, writeRunRecord } from './runs.ts'

export interface StartedCluster {
  info: ClusterConnectionInfo
  stop(): Promise<void>
  /**
   * Embedded clusters only: kills host `name`'s agent (SIGKILL, as a crash: its keeper reaps what its sessions
   * held, QEMU included) and starts it again with the same name, address, port, token and state dir.
   */
  restartAgent?(name: string): Promise<void>
}

const WATCHER_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), 'watcher.ts')
const DEFAULT_LEASE_SECONDS = 30
const READY_TIMEOUT_MS = 30_000

/** The token a source names, registered as a secret so that no report ever shows it. */
export function resolveToken(source: TokenSource | undefined, what: string): string {
  const token = readToken(source, what)
  registerSecret(token)
  return token
}

function readToken(source: TokenSource | undefined, what: string): string {
  if (!source) throw new Error(`${what}: no token given; set cluster.token to { env: 'VAR' } or { file: 'path' }`)
  if ('value' in source) return source.value
  if ('env' in source) {
    const v = process.env[source.env]
    if (!v) throw new Error(`${what}: environment variable ${source.env} (cluster token) is empty or unset`)
    return v.trim()
  }
  try {
    return readFileSync(source.file, 'utf8').trim()
  } catch (e) {
    throw new Error(`${what}: cannot read token file ${source.file}: ${(e as Error).message}`)
  }
}

function canUseNetns(): boolean {
  return (
    process.getuid?.() === 0 &&
    existsSync('/proc/self/ns/net') &&
    ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some(existsSync)
  )
}

export async function startCluster(
  cluster: ClusterConfig,
  ctx: { project: FullProject; config: FullConfig },
): Promise<StartedCluster> {
  const leaseSeconds = cluster.leaseSeconds ?? DEFAULT_LEASE_SECONDS
  if (Array.isArray(cluster.hosts)) return startRemote(cluster, cluster.hosts, leaseSeconds, ctx)
  return startEmbedded(cluster, cluster.hosts, leaseSeconds, ctx)
}

async function startRemote(
  cluster: ClusterConfig,
  hosts: Exclude<ClusterConfig['hosts'], number>,
  leaseSeconds: number,
  ctx: { project: FullProject },
): Promise<StartedCluster> {
  const info: ClusterConnectionInfo = {
    hosts: hosts.map(h => ({
      name: h.name,
      url: h.url,
      token: resolveToken(h.token ?? cluster.token, `project "${ctx.project.name}", host ${h.name}`),
      labels: h.labels ?? {},
      address: new URL(h.url).hostname,
    })),
    leaseSeconds,
    tls: cluster.tls,
    sharedPool: cluster.storage?.shared?.type === 'dir' ? cluster.storage.shared.path : undefined,
    pools: poolDefsOf(cluster.storage),
    networks: cluster.networks,
  }
  const serverless = poolsWithoutServer(info.pools)
  if (serverless.length > 0) {
    throw new Error(
      `project "${ctx.project.name}": pool "${serverless[0]}" (nfs) names no server; with remote hosts give { type: 'nfs', server, export } (only an embedded cluster runs its own NFS server)`,
    )
  }
  for (const h of info.hosts) {
    const url = new URL(h.url)
    if (url.protocol === 'ws:' && !isLoopbackHost(url.hostname)) {
      throw new Error(`project "${ctx.project.name}", host ${h.name}: ${h.url} is not loopback; use wss:// (TLS)`)
    }
  }
  // Check every agent once so that a wrong token or an unreachable host fails before any test runs.
  await Promise.all(
    info.hosts.map(async h => {
      const c = await AgentClient.connect({ url: h.url, token: h.token, name: h.name, tls: info.tls, reconnect: false })
      await c.close()
    }),
  )
  return { info, stop: async () => {} }
}

interface EmbeddedAgent {
  name: string
  child: ChildProcess
  url: string
  address: string
  /** Starts the agent again (same identity) once this one is gone. */
  respawn: () => Promise<ChildProcess>
}

async function startEmbedded(
  cluster: ClusterConfig,
  count: number,
  leaseSeconds: number,
  ctx: { project: FullProject },
): Promise<StartedCluster> {
  const isolation = cluster.isolation ?? 'auto'
  let netns = isolation === 'netns' || (isolation === 'auto' && canUseNetns())
  if (isolation === 'netns' && !canUseNetns()) {
    throw new Error(
      `project "${ctx.project.name}": cluster.isolation 'netns' needs root and the ip tool; use 'auto' or 'none' to run on loopback`,
    )
  }
  const shared = cluster.storage?.shared
  if (shared?.type === 'nfs') {
    throw new Error(
      `project "${ctx.project.name}": NFS shared storage needs remote hosts; embedded clusters use a directory`,
    )
  }
  // nfs pools that name no server get the run's own NFS server, which lives in a namespace of the underlay.
  const nfsPools = poolsWithoutServer(poolDefsOf(cluster.storage))
  if (nfsPools.length > 0 && !netns) {
    throw new Error(
      `project "${ctx.project.name}": pool "${nfsPools[0]}" (nfs, no server) is served by vt's embedded NFS server, which needs network namespaces (root, cluster.isolation 'auto' or 'netns'); or name your own server and export`,
    )
  }
  const runId = randomBytes(3).toString('hex')
  const baseDir = join(os.tmpdir(), `vt-cluster-${runId}`)
  const logDir = join(ctx.project.outputDir, '.agents')
  const log = (m: string) => process.stderr.write(`${m}\n`)
  // The record first, under the lock that also guards the reaping of crashed runs: from here on, whatever
  // this run creates is found again if it dies.
  const record: RunRecord = {
    runId,
    pid: process.pid,
    startTime: startTimeOf(process.pid),
    namespaces: [],
    baseDir,
    agents: [],
  }
  await withRunLock(async () => {
    await reapDeadRuns(log)
    if (netns) {
      record.octet = await claimSubnet(runId)
      Object.assign(record, underlayNames(runId, count, nfsPools.length > 0))
    }
    writeRunRecord(record)
  })
  let underlay: Underlay | undefined
  let watcher: ChildProcess | undefined
  const agents: EmbeddedAgent[] = []
  let nfs: NfsServer | undefined
  const stop = async () => {
    await Promise.all(agents.map(a => stopAgent(a.child)))
    await nfs?.stop() // after the agents: they remove their sessions' volumes over NFS when they stop
    // Under the lock: another run's reaper lists namespaces before it reads records, so a teardown between the
    // two would show it a namespace without a record ("orphaned") that is still being removed.
    await withRunLock(async () => {
      await underlay?.destroy()
      await reapRun(record) // what is left: namespaces of a half-made underlay, the subnet lock, the dir, the record
    })
    watcher?.stdin?.end() // the record is gone: the watcher exits without touching anything
  }
  try {
    mkdirSync(baseDir, { recursive: true, mode: 0o700 })
    mkdirSync(logDir, { recursive: true })
    watcher = startWatcher(runId, logDir)
    if (watcher.pid !== undefined) {
      record.watcher = { pid: watcher.pid, startTime: startTimeOf(watcher.pid) ?? 0 }
      writeRunRecord(record)
    }
    const sharedPool = shared?.path ? resolve(shared.path) : join(baseDir, 'shared')
    mkdirSync(sharedPool, { recursive: true })
    if (netns) {
      try {
        underlay = await createUnderlay(runId, count, record.octet as number, nfsPools.length > 0)
      } catch (e) {
        // Only 'auto' on a machine where namespaces cannot be made at all (some containers) uses loopback, and
        // says so; any other failure is an error, never a silent change of isolation.
        if (isolation === 'netns' || nfsPools.length > 0 || !(e instanceof NetnsUnavailableError)) throw e
        log(`vt: network namespaces cannot be created here (${e.message}); embedded hosts share loopback`)
        netns = false
      }
    }
    if (underlay?.storage) {
      const { netns, address } = underlay.storage
      nfs = await startNfsServer({ netns, address, dir: join(baseDir, 'nfs') })
    }
    // Each host offers its share of this machine, never the whole of it N times over.
    const capacity = embeddedCapacity(cluster)
    const spawnAgent = async (i: number, listen: string) => {
      const name = `host${i + 1}`
      const dir = join(baseDir, name)
      const logFile = join(logDir, `${name}.log`)
      // The log is a file, not a pipe to us: an agent must never die of a broken log pipe when we do.
      const logFd = openSync(logFile, 'a')
      return spawnLocalAgent({
        listen,
        token: tokens[i],
        stateDir: join(dir, 'state'),
        name,
        allowRoots: [join(dir, 'files'), sharedPool],
        maxLeaseSeconds: Math.max(leaseSeconds, 60),
        insecure: !!underlay, // the underlay exists only inside namespaces this run created
        labels: cluster.labels?.[i],
        capacity: capacity[i],
        netns: underlay?.hosts[i].netns,
        stdio: ['pipe', 'pipe', logFd],
        // Own session: a terminal's Ctrl-C reaches the runner, which stops the agents after the workers'
        // teardown, instead of the agents stopping under the workers' feet.
        detached: true,
        onSpawn: c => {
          closeSync(logFd)
          if (c.pid !== undefined) {
            record.agents?.push({ pid: c.pid, startTime: startTimeOf(c.pid) ?? 0 })
            writeRunRecord(record)
          }
        },
        wait: { timeoutMs: READY_TIMEOUT_MS, explain: why => explainNotReady(name, why, logFile) },
      })
    }
    const tokens = Array.from({ length: count }, () => randomBytes(32).toString('hex'))
    for (const t of tokens) registerSecret(t)
    const infos = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const name = `host${i + 1}`
        mkdirSync(join(baseDir, name, 'files'), { recursive: true })
        const address = underlay ? underlay.hosts[i].address : '127.0.0.1'
        const { child, url } = await spawnAgent(i, `${address}:${underlay ? 7070 : 0}`)
        // Again on the port it got: the controllers reconnect to the same URL.
        const respawn = async () => (await spawnAgent(i, `${address}:${new URL(url).port}`)).child
        agents.push({ name, child, url, address, respawn })
        return { name, url, token: tokens[i], address, labels: cluster.labels?.[i] ?? {} }
      }),
    )
    // One restart of a host at a time (two workers may ask at once): the second waits, then restarts again.
    const restarting = new Map<string, Promise<void>>()
    const restartAgent = (name: string): Promise<void> => {
      const next = (restarting.get(name) ?? Promise.resolve()).catch(() => {}).then(() => restartOnce(name))
      restarting.set(name, next)
      return next
    }
    const restartOnce = async (name: string) => {
      const agent = agents.find(a => a.name === name)
      if (!agent) throw new Error(`no embedded host named "${name}" (hosts: ${agents.map(a => a.name).join(', ')})`)
      const old = agent.child
      if (old.exitCode === null && old.signalCode === null) {
        const exited = once(old, 'exit')
        old.kill('SIGKILL')
        await exited
      }
      record.agents = record.agents?.filter(a => a.pid !== old.pid)
      writeRunRecord(record)
      agent.child = await agent.respawn()
    }
    return {
      info: {
        hosts: infos,
        leaseSeconds,
        sharedPool,
        pools: withEmbeddedServer(poolDefsOf(cluster.storage), nfs),
        networks: cluster.networks,
      },
      stop,
      restartAgent,
    }
  } catch (e) {
    await stop()
    throw e
  }
}

/**
 * The run's watcher: a small process in its own session that outlives us. Its stdin is a pipe from us; when it
 * closes while the run's record still exists, we died without stopping the run, and it cleans up.
 */
function startWatcher(runId: string, logDir: string): ChildProcess {
  const logFd = openSync(join(logDir, 'watcher.log'), 'a')
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), WATCHER_MAIN, runId], {
    stdio: ['pipe', 'ignore', logFd],
    detached: true,
  })
  closeSync(logFd)
  child.on('error', () => {})
  child.stdin?.on('error', () => {})
  child.unref()
  ;(child.stdin as unknown as { unref?: () => void } | null)?.unref?.() // the pipe must not keep us alive
  return child
}

function explainNotReady(name: string, why: string, logFile: string): string {
  let tail = ''
  try {
    tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n')
  } catch {}
  return `embedded agent ${name} ${why}${tail ? `:\n${tail}` : ''}`
}

/** Closes the agent's stdin (it stops and reaps its sessions), then SIGKILLs it if it lingers. */
async function stopAgent(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.stdin?.end()
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}
