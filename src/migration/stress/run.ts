// runMigrationCommands(steps, fixtures, options): boots the VM under stress on the first host (or clones it from a
// warm snapshot, instant.ts), checks the invariants once, then runs the generated commands as a fast-check model
// run (each command checks the invariants after itself). Meant as the body of a `test.prop` over
// `fc.commands(migrationCommands())`.
import fc from 'fast-check'
import type { Cluster } from '../../cluster/cluster.ts'
import type { Host } from '../../cluster/host.ts'
import type { VmSpec } from '../../protocol/vm.ts'
import { apiStep } from '../../runner/apiStep.ts'
import type { VmSnapshot } from '../../vm/snapshot.ts'
import type { Vm } from '../../vm/vm.ts'
import { memtestSpec, verifyMemoryIntegrity } from '../memtestVm.ts'
import type { MigrationCommand } from './commands.ts'
import { checkInvariants } from './invariants.ts'
import type { MigrationModel, MigrationSystem, StepRecord, StressGuest } from './model.ts'

export interface RunMigrationCommandsOptions {
  /** 'memtest' (default): memory checked after every step, the counter is its count of passes. 'tiny': a Linux
   * guest whose workload (start/stop commands) bumps a counter; its memory cannot be checked. */
  guest?: StressGuest
  /** Guest memory in MiB (default 64 for memtest, the fixture's for tiny). */
  memoryMiB?: number
  /** memtest: verify memory after every step (default) or only at the end. */
  verifyMemory?: 'each-step' | 'end'
  /** One migration's timeout in ms (default 60 s); a timed-out migration must leave the source running. */
  migrationTimeout?: number
  /**
   * memtest: start the guest as a clone of this snapshot of a memtest guest (see memtestSnapshot: instant VMs)
   * instead of booting it; it starts on the snapshot's host. Its memory is checked before the first command.
   */
  from?: VmSnapshot
  /** Runs once the VM is up and its first invariants hold, before the first command. */
  onReady?: (vm: Vm) => unknown
  /** Runs after every step's invariants: a check of your own (throw to fail), given the story so far. */
  onStep?: (step: StepRecord, model: MigrationModel, system: MigrationSystem) => unknown
}

export interface StressFixtures {
  cluster: Cluster
  createVm: (spec?: Partial<VmSpec> & { host?: Host | string | number }) => Promise<Vm>
}

let seq = 0

export async function runMigrationCommands(
  steps: Iterable<MigrationCommand>,
  fixtures: StressFixtures,
  options: RunMigrationCommandsOptions = {},
): Promise<void> {
  const { cluster, createVm } = fixtures
  const hosts = cluster.hosts
  if (hosts.length < 1) throw new Error('runMigrationCommands needs a cluster with hosts')
  const guest = options.guest ?? 'memtest'
  const name = `stress${++seq}-${process.pid}`
  const from = options.from
  if (from && guest !== 'memtest')
    throw new Error(`runMigrationCommands: \`from\` starts the memtest guest from a snapshot; guest is '${guest}'`)
  const first = from ? from.host : hosts[0]
  if (!hosts.includes(first))
    throw new Error(`runMigrationCommands: ${from} lives on host ${first.name}, which is not one of the cluster's`)
  const start = from
    ? `clone ${name} (${guest}) from ${from.vm}:${from.name} on ${first.name}`
    : `boot ${name} (${guest}) on ${first.name}`
  const vm = await apiStep(start, async () => {
    if (from) {
      const spec = await memtestSpec({ name, memoryMiB: options.memoryMiB ?? 64 })
      // The clone's console starts with the template's (passes included): its memory check comes next.
      return createVm({ ...spec, from: { vm: from.vm, snapshot: from.name }, host: first })
    }
    if (guest !== 'memtest')
      return createVm({ name, host: hosts[0], ...(options.memoryMiB ? { memory: options.memoryMiB } : {}) })
    const v = await createVm({ ...(await memtestSpec({ name, memoryMiB: options.memoryMiB ?? 64 })), host: hosts[0] })
    await v.console.waitFor(/B{2}/, { timeout: 60_000 })
    return v
  })
  const system: MigrationSystem = {
    vm,
    hosts,
    guest,
    counter: 0,
    onStep: options.onStep,
    migrationTimeout: options.migrationTimeout ?? 60_000,
    verifyMemory: options.verifyMemory ?? 'each-step',
    faults: cluster.faults,
  }
  const model: MigrationModel = {
    hosts: hosts.length,
    host: hosts.indexOf(first),
    paused: false,
    workload: false,
    history: [],
  }
  await checkInvariants(model, system, { kind: 'boot', description: start })
  await options.onReady?.(vm)
  await fc.asyncModelRun(() => ({ model, real: system }), steps)
  if (guest === 'memtest' && system.verifyMemory === 'end') await verifyMemoryIntegrity(vm)
}
