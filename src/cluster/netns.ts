// Network namespaces for the embedded cluster: one namespace per host, joined by a bridge that lives in an
// underlay namespace of its own, on a private /24 (10.213.X.0/24). The controller (root namespace) reaches the
// bridge through one veth, so its traffic goes only into namespaces this run created. Every name carries the
// run id (`vt-<run>-...`); a run record under /run/vt/embedded lets the next start clean up after a crash.
import { execFile } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { isSameProcess, startTimeOf } from '../../agent/proc.ts'

const run = promisify(execFile)
const RUN_DIR = '/run/vt/embedded'
const NS_PATTERN = /^vt-([0-9a-f]{6})-(net|h\d+)$/

export interface Underlay {
  runId: string
  subnet: string
  controllerAddress: string
  /** Namespace name and address of each host. */
  hosts: { netns: string; address: string }[]
  destroy(): Promise<void>
}

interface RunRecord {
  runId: string
  pid: number
  startTime?: number
  octet: number
  namespaces: string[]
  rootLink: string
  baseDir?: string
}

async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', args, { timeout: 10_000 })
    return stdout
  } catch (e) {
    const err = e as { stderr?: string; message: string }
    throw new Error(`ip ${args.join(' ')} failed: ${(err.stderr || err.message).trim()}`)
  }
}

async function listNamespaces(): Promise<string[]> {
  const out = await ip('netns', 'list').catch(() => '')
  return out
    .split('\n')
    .map(l => l.split(' ')[0])
    .filter(Boolean)
}

async function killNamespacePids(ns: string): Promise<void> {
  const out = await ip('netns', 'pids', ns).catch(() => '')
  for (const pid of out.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL')
    } catch {}
  }
}

async function deleteNamespace(ns: string): Promise<void> {
  await killNamespacePids(ns)
  await ip('netns', 'del', ns).catch(() => {})
}

/** Removes what crashed runs left: namespaces, the controller veth, subnet locks, base dirs. */
export async function cleanLeftovers(log: (m: string) => void = () => {}): Promise<void> {
  mkdirSync(RUN_DIR, { recursive: true })
  const live = new Set<string>()
  for (const name of readdirSync(RUN_DIR)) {
    if (!name.endsWith('.json')) continue
    let rec: RunRecord
    try {
      rec = JSON.parse(readFileSync(join(RUN_DIR, name), 'utf8'))
    } catch {
      rmSync(join(RUN_DIR, name), { force: true })
      continue
    }
    if (rec.startTime !== undefined && isSameProcess(rec.pid, rec.startTime)) {
      live.add(rec.runId)
      continue
    }
    log(`vt: cleaning up embedded cluster ${rec.runId} left by a crashed run (pid ${rec.pid})`)
    for (const ns of rec.namespaces) await deleteNamespace(ns)
    await ip('link', 'del', rec.rootLink).catch(() => {})
    rmSync(join(RUN_DIR, `subnet-${rec.octet}`), { recursive: true, force: true })
    if (rec.baseDir) rmSync(rec.baseDir, { recursive: true, force: true })
    rmSync(join(RUN_DIR, name), { force: true })
  }
  // Namespaces of our naming scheme with no live run record.
  for (const ns of await listNamespaces()) {
    const m = NS_PATTERN.exec(ns)
    if (m && !live.has(m[1])) {
      log(`vt: removing orphaned namespace ${ns}`)
      await deleteNamespace(ns)
    }
  }
}

/** Takes a free 10.213.X.0/24: not on any root-namespace interface and not locked by another run. */
async function claimSubnet(runId: string): Promise<number> {
  const used = await ip('-4', 'addr')
  for (let attempt = 0; attempt < 256; attempt++) {
    const octet = (Number.parseInt(runId.slice(0, 4), 16) + attempt) % 254
    if (used.includes(`10.213.${octet}.`)) continue
    try {
      mkdirSync(join(RUN_DIR, `subnet-${octet}`))
      return octet
    } catch {
      // locked by a concurrent run
    }
  }
  throw new Error('no free 10.213.X.0/24 subnet for the embedded cluster')
}

export async function createUnderlay(runId: string, count: number, baseDir?: string): Promise<Underlay> {
  mkdirSync(RUN_DIR, { recursive: true })
  const octet = await claimSubnet(runId)
  const subnet = `10.213.${octet}`
  const underlay = `vt-${runId}-net`
  const rootLink = `vt${runId}c`
  const hosts = Array.from({ length: count }, (_, i) => ({
    netns: `vt-${runId}-h${i + 1}`,
    address: `${subnet}.${11 + i}`,
  }))
  const record: RunRecord = {
    runId,
    pid: process.pid,
    startTime: startTimeOf(process.pid),
    octet,
    namespaces: [underlay, ...hosts.map(h => h.netns)],
    rootLink,
    baseDir,
  }
  // The record first: if we crash half way, the next start knows what to remove.
  writeFileSync(join(RUN_DIR, `${runId}.json`), JSON.stringify(record))
  const destroy = async () => {
    for (const ns of record.namespaces) await deleteNamespace(ns)
    await ip('link', 'del', rootLink).catch(() => {})
    try {
      rmdirSync(join(RUN_DIR, `subnet-${octet}`))
    } catch {}
    rmSync(join(RUN_DIR, `${runId}.json`), { force: true })
  }
  try {
    await ip('netns', 'add', underlay)
    await ip('-n', underlay, 'link', 'set', 'lo', 'up')
    await ip('-n', underlay, 'link', 'add', 'br0', 'type', 'bridge')
    await ip('-n', underlay, 'link', 'set', 'br0', 'up')
    for (const [i, h] of hosts.entries()) {
      await ip('netns', 'add', h.netns)
      await ip('-n', h.netns, 'link', 'set', 'lo', 'up')
      await ip('-n', underlay, 'link', 'add', `h${i + 1}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns)
      await ip('-n', underlay, 'link', 'set', `h${i + 1}`, 'master', 'br0', 'up')
      await ip('-n', h.netns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0')
      await ip('-n', h.netns, 'link', 'set', 'eth0', 'up')
    }
    await ip('link', 'add', rootLink, 'type', 'veth', 'peer', 'name', 'ctl', 'netns', underlay)
    await ip('-n', underlay, 'link', 'set', 'ctl', 'master', 'br0', 'up')
    await ip('addr', 'add', `${subnet}.1/24`, 'dev', rootLink)
    await ip('link', 'set', rootLink, 'up')
  } catch (e) {
    await destroy()
    throw e
  }
  return { runId, subnet: `${subnet}.0/24`, controllerAddress: `${subnet}.1`, hosts, destroy }
}
