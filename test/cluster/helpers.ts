// What an embedded run leaves on the machine, for leak checks: its namespaces, veth, agents, temp dir, record.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { recordFile } from '../../src/cluster/runs.ts'
import type { ClusterConnectionInfo } from '../../src/config/cluster.ts'
import { alive } from '../agent/helpers.ts'

export function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map(l => l.split(' ')[0])
    .filter(Boolean)
}

export function runIdOf(info: ClusterConnectionInfo): string {
  return /vt-cluster-([0-9a-f]{6})/.exec(info.sharedPool ?? '')?.[1] ?? ''
}

/** Live processes whose command line mentions the run's directory (its agents). */
export function agentPids(runId: string): number[] {
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(`vt-cluster-${runId}/`) && alive(Number(name)))
        pids.push(Number(name))
    } catch {}
  }
  return pids
}

/** Everything of the run still on the machine, by kind (empty when all is gone). */
export function leftovers(info: ClusterConnectionInfo): string[] {
  const runId = runIdOf(info)
  if (!runId) throw new Error(`no run id in ${info.sharedPool}`)
  const out: string[] = []
  for (const ns of namespaces().filter(n => n.includes(runId))) out.push(`namespace ${ns}`)
  if (execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).includes(`vt${runId}c`)) out.push(`veth vt${runId}c`)
  for (const pid of agentPids(runId)) out.push(`agent pid ${pid}`)
  if (existsSync(info.sharedPool as string)) out.push(`dir ${info.sharedPool}`)
  if (existsSync(recordFile(runId))) out.push(`record ${recordFile(runId)}`)
  return out
}

/**
 * Starts test/cluster/scripts/start-and-hang.ts (an embedded cluster in a process that then hangs) and returns
 * its connection info and the process, for tests that kill it.
 */
export async function startHangingRun(
  env: Record<string, string>,
): Promise<{ info: ClusterConnectionInfo; child: ReturnType<typeof spawn> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', resolve(fileURLToPath(import.meta.url), '../scripts/start-and-hang.ts')],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const info = await new Promise<ClusterConnectionInfo>((res, rej) => {
    let buf = ''
    child.once('exit', c => rej(new Error(`start-and-hang exited ${c}`)))
    child.stdout?.on('data', d => {
      buf += d
      if (buf.includes('\n')) res(JSON.parse(buf.split('\n')[0]))
    })
  })
  child.removeAllListeners('exit')
  return { info, child }
}
