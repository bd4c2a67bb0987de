// The model of migration stress: where the VM is and what it is doing, as the commands expect it; and the system
// under test (the real VM on the real cluster) the commands act on. Invariants (invariants.ts) compare the two.
import type fc from 'fast-check'
import type { Faults } from '../../cluster/faults.ts'
import type { Host } from '../../cluster/host.ts'
import type { Vm } from '../../vm/vm.ts'

export type StressGuest = 'memtest' | 'tiny'

/** What the commands believe about the cluster. */
export interface MigrationModel {
  /** Number of hosts. */
  hosts: number
  /** Index of the host the VM runs on. */
  host: number
  paused: boolean
  /** A workload runs in the guest (tiny guest only). */
  workload: boolean
  /** The commands run so far, as their one-line descriptions (for checks that look at the story). */
  history: StepRecord[]
}

export interface StepRecord {
  /** 'migrate', 'pause', 'resume', 'workload-start', 'workload-stop', or a fault ('partition', ...). */
  kind: string
  description: string
  /** Capabilities a migration enabled. */
  capabilities?: string[]
  /** Whether the migration completed (false: it failed and the source kept the VM). */
  completed?: boolean
}

/** The real side: the VM under test and the cluster's hosts. */
export interface MigrationSystem {
  vm: Vm
  hosts: readonly Host[]
  guest: StressGuest
  /** The highest workload counter seen (memtest: finished passes; tiny: the workload's counter file). */
  counter: number
  /** Runs after every step's invariants, e.g. a check of the spec's own (it may throw). */
  onStep?: (step: StepRecord, model: MigrationModel, system: MigrationSystem) => unknown
  /** Milliseconds one migration may take before it is cancelled (the source must then still run). */
  migrationTimeout: number
  verifyMemory: 'each-step' | 'end'
  /** `cluster.faults`, for the fault commands. */
  faults?: Faults
}

/** The host a command addressed relative to the VM's current one: `offset` picks among the others. */
export function otherHost(model: MigrationModel, offset: number): number {
  const others = model.hosts - 1
  return (model.host + 1 + (offset % others)) % model.hosts
}

/** One command of migration stress: fast-check's async command over the model and the real cluster. */
export type MigrationCommand = fc.AsyncCommand<MigrationModel, MigrationSystem>
