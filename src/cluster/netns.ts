// Network namespaces for the embedded cluster: one namespace per host, joined by a bridge that lives in an
// underlay namespace of its own, on a private /24 (10.213.X.0/24). The controller (root namespace) reaches the
// bridge through one veth, so its traffic goes only into namespaces this run created. Every name carries the
// run id (`vt-<run>-...`); the run's record (runs.ts) names them so that a crashed run's are removed.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)
export const NS_PATTERN = /^vt-([0-9a-f]{6})-(net|st|h\d+)$/

/** Namespaces cannot be made here at all (no rights, e.g. an unprivileged container): 'auto' may use loopback. */
export class NetnsUnavailableError extends Error {}

export interface Underlay {
  runId: string
  subnet: string
  controllerAddress: string
  /** Namespace name and address of each host. */
  hosts: { netns: string; address: string }[]
  /** The storage namespace (the embedded NFS server's), when asked for. */
  storage?: { netns: string; address: string }
  namespaces: string[]
  rootLink: string
  destroy(): Promise<void>
}

export async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', args, { timeout: 10_000 })
    return stdout
  } catch (e) {
    const err = e as { stderr?: string; message: string }
    throw new Error(`ip ${args.join(' ')} failed: ${(err.stderr || err.message).trim()}`)
  }
}

export async function listNamespaces(): Promise<string[]> {
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

export async function deleteNamespace(ns: string): Promise<void> {
  await killNamespacePids(ns)
  await ip('netns', 'del', ns).catch(() => {})
}

/** The names a run's underlay will use: its record lists them before they exist. */
export function underlayNames(
  runId: string,
  count: number,
  storage = false,
): { namespaces: string[]; rootLink: string } {
  const hosts = Array.from({ length: count }, (_, i) => `vt-${runId}-h${i + 1}`)
  return { namespaces: [`vt-${runId}-net`, ...hosts, ...(storage ? [`vt-${runId}-st`] : [])], rootLink: `vt${runId}c` }
}

/**
 * Creates the run's namespaces on 10.213.<octet>.0/24 (claimed, and the run record written, beforehand): hosts
 * at .11 and up, the controller at .1 and, with `storage`, a storage namespace at .2 for the NFS server.
 */
export async function createUnderlay(runId: string, count: number, octet: number, storage = false): Promise<Underlay> {
  const subnet = `10.213.${octet}`
  const { namespaces, rootLink } = underlayNames(runId, count, storage)
  const underlay = namespaces[0]
  const hosts = namespaces.slice(1, count + 1).map((netns, i) => ({ netns, address: `${subnet}.${11 + i}` }))
  const store = storage ? { netns: namespaces[count + 1], address: `${subnet}.2` } : undefined
  const destroy = async () => {
    for (const ns of namespaces) await deleteNamespace(ns)
    await ip('link', 'del', rootLink).catch(() => {})
  }
  try {
    await ip('netns', 'add', underlay).catch(e => {
      if (/Operation not permitted|Permission denied|Read-only file system/.test((e as Error).message)) {
        throw new NetnsUnavailableError((e as Error).message)
      }
      throw e
    })
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
    if (store) {
      await ip('netns', 'add', store.netns)
      await ip('-n', store.netns, 'link', 'set', 'lo', 'up')
      await ip('-n', underlay, 'link', 'add', 'st', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', store.netns)
      await ip('-n', underlay, 'link', 'set', 'st', 'master', 'br0', 'up')
      await ip('-n', store.netns, 'addr', 'add', `${store.address}/24`, 'dev', 'eth0')
      await ip('-n', store.netns, 'link', 'set', 'eth0', 'up')
    }
    await ip('link', 'add', rootLink, 'type', 'veth', 'peer', 'name', 'ctl', 'netns', underlay)
    await ip('-n', underlay, 'link', 'set', 'ctl', 'master', 'br0', 'up')
    await ip('addr', 'add', `${subnet}.1/24`, 'dev', rootLink)
    await ip('link', 'set', rootLink, 'up')
  } catch (e) {
    await destroy()
    throw e
  }
  return {
    runId,
    subnet: `${subnet}.0/24`,
    controllerAddress: `${subnet}.1`,
    hosts,
    storage: store,
    namespaces,
    rootLink,
    destroy,
  }
}
