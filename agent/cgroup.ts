// A cgroup (v2) of the agent's own, where the machine allows it (root, cgroup2 mounted): the agent moves itself in
// at start, so everything it starts is in it, even a process that left both its process group and its parent's
// tree (double fork + setsid). The keeper (keeper.ts), which stays outside, kills whatever is left in it once the
// agent exited, and removes it. Only for a dedicated `vt agent` process: never for an agent inside another program.
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Where cgroup2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems). */
function cgroup2Mount(): string | undefined {
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [left, right] = line.split(' - ')
      if (right?.startsWith('cgroup2 ')) return left.split(' ')[4]
    }
  } catch {}
  return undefined
}

/** The cgroup this agent would make for itself: <our cgroup>/vt-agent-<pid>; undefined when impossible here. */
export function plannedCgroup(): string | undefined {
  if (process.getuid?.() !== 0) return undefined
  const mount = cgroup2Mount()
  if (!mount) return undefined
  try {
    const own = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find(l => l.startsWith('0::'))
      ?.slice(3)
    return own === undefined ? undefined : join(mount, own, `vt-agent-${process.pid}`)
  } catch {
    return undefined
  }
}

/** Creates the planned cgroup and moves this process into it; false (and a log line) when that fails. */
export function joinCgroup(dir: string, log: (why: string) => void): boolean {
  try {
    mkdirSync(dir)
    writeFileSync(join(dir, 'cgroup.procs'), String(process.pid))
    return true
  } catch (e) {
    log(`no cgroup of its own (${(e as Error).message}); reaping relies on process groups and trees`)
    try {
      rmdirSync(dir)
    } catch {}
    return false
  }
}
