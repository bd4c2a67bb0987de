// Migration patterns over several hosts or VMs: ping-pong through every host, several VMs at once.
import type { Host } from '../cluster/host.ts'
import type { MigratableVm } from './driver.ts'
import type { MigrationResult } from './types.ts'
import { type MigrateVmOptions, migrateVm } from './vm.ts'

/** Ping-pong: migrate through every host of `hosts` in order, ending where it started. */
export async function pingPong<V extends MigratableVm>(
  vm: V,
  hosts: readonly Host[],
  options: Omit<MigrateVmOptions<V>, 'to'> & { rounds?: number } = {},
): Promise<MigrationResult[]> {
  if (hosts.length < 2) throw new Error(`ping-pong needs at least two hosts, the cluster has ${hosts.length}`)
  const start = hosts.indexOf(vm.host)
  const order = [...hosts.slice(start + 1), ...hosts.slice(0, start + 1)]
  const results: MigrationResult[] = []
  for (let r = 0; r < (options.rounds ?? 1); r++) {
    for (const to of order) results.push(await migrateVm(vm, { hosts, ...options, to }))
  }
  return results
}

/** Several VMs migrating at the same time; rejects with the first failure after all have settled. */
export async function migrateAll<V extends MigratableVm>(
  moves: { vm: V; options: MigrateVmOptions<V> }[],
): Promise<MigrationResult[]> {
  const settled = await Promise.allSettled(moves.map(m => migrateVm(m.vm, m.options)))
  const failed = settled.find(s => s.status === 'rejected')
  if (failed) throw (failed as PromiseRejectedResult).reason
  return settled.map(s => (s as PromiseFulfilledResult<MigrationResult>).value)
}
