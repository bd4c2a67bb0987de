// Instant VMs for migration stress: one memtest guest booted, its memory checked, saved as a snapshot and paused;
// every run then starts its guest as a clone of that snapshot (a new QEMU loading the saved RAM: no firmware, no
// boot) instead of booting one. Nothing is taken on trust: a run checks its clone's memory before the first
// command like a booted guest's, so a restore that lost or garbled a page fails the run as a migration would.
import type { Host } from '../../cluster/host.ts'
import { apiStep } from '../../runner/apiStep.ts'
import type { VmSnapshot } from '../../vm/snapshot.ts'
import { memtestSpec, verifyMemoryIntegrity } from '../memtestVm.ts'
import type { StressFixtures } from './run.ts'

export interface MemtestSnapshotOptions {
  /** Where the snapshot lives: every clone of it starts there (default the cluster's first host). */
  host?: Host
  /** Guest memory in MiB: runs using the snapshot must ask for the same (default 64, as runMigrationCommands). */
  memoryMiB?: number
  /** The paused VM holding the snapshot (default `stress-warm-<pid>`). */
  name?: string
}

/**
 * Boots a memtest guest, lets it finish two passes, checks its memory, saves it as snapshot `warm` and pauses
 * it (it only holds the snapshot: it must outlive the runs, so make it with a worker-scoped createVm in specs).
 * Give the result to `runMigrationCommands(..., { from })`.
 */
export async function memtestSnapshot(
  fixtures: StressFixtures,
  options: MemtestSnapshotOptions = {},
): Promise<VmSnapshot> {
  const host = options.host ?? fixtures.cluster.hosts[0]
  if (!host) throw new Error('memtestSnapshot needs a cluster with hosts')
  const name = options.name ?? `stress-warm-${process.pid}`
  return apiStep(`a warm memtest guest ${name} on ${host.name} to start stress runs from`, async () => {
    const spec = await memtestSpec({ name, memoryMiB: options.memoryMiB ?? 64 })
    const vm = await fixtures.createVm({ ...spec, host })
    await vm.console.waitFor(/B{2}/, { timeout: 60_000 })
    await verifyMemoryIntegrity(vm)
    const snapshot = await vm.snapshot('warm')
    await vm.pause()
    return snapshot
  })
}
