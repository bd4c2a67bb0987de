// migrationCommands(): fast-check commands over a model of the cluster (model.ts). Migrate to another host with
// random capabilities and parameters, pause, resume, and (tiny guest) start or stop a workload. After every
// command the invariants (invariants.ts) compare the real cluster with the model. Commands describe themselves
// without host names (the hosts are known only when they run), so a shrunk story reads the same on any cluster.
import fc from 'fast-check'
import type { MigrationCapabilityName, MigrationParameters } from '../types.ts'
import { faultCommands } from './faults.ts'
import { afterStep as step } from './invariants.ts'
import {
  type MigrationCommand,
  type MigrationModel,
  type MigrationSystem,
  otherHost,
  type StepRecord,
} from './model.ts'

const MiB = 1024 * 1024

export interface MigrationCommandsOptions {
  /**
   * Add faults from `cluster.faults` (faults.ts): partition, kill the destination's QEMU or restart its agent
   * mid-migration, slow link.
   */
  faults?: boolean
  /** Workload start/stop commands: they need the tiny guest (`runMigrationCommands(..., { guest: 'tiny' })`). */
  workload?: boolean
}

export type { MigrationCommand }

interface MigrateChoice {
  offset: number
  multifd: boolean
  xbzrle: boolean
  autoConverge: boolean
  postcopy: boolean
  downtimeLimit: number
  bandwidthMiB: number
  channels: number
  xbzrleCacheMiB: number
}

/** The capabilities and parameters a choice amounts to (QEMU 7.2 cannot combine multifd with postcopy). */
function migrateOptions(c: MigrateChoice) {
  // Every capability is given, false included: a failed migration leaves the source QEMU with the previous
  // attempt's capabilities (postcopy-ram on the source only breaks the next migration: "RAM postcopy is disabled
  // but have 16 byte advise"). xbzrle with postcopy made QEMU 7.2 drop the connection here; multifd with postcopy is refused.
  const capabilities: Partial<Record<MigrationCapabilityName, boolean>> = {
    multifd: c.multifd && !c.postcopy,
    xbzrle: c.xbzrle && !c.postcopy,
    'auto-converge': c.autoConverge,
    'postcopy-ram': c.postcopy,
  }
  // The memtest guest redirties all its RAM every few ms: precopy converges with a long final pass; postcopy
  // must not converge in precopy before the switch, so its precopy is slow and strict.
  const parameters: MigrationParameters = c.postcopy
    ? { 'max-bandwidth': 64 * MiB, 'downtime-limit': 1 }
    : { 'max-bandwidth': c.bandwidthMiB * MiB, 'downtime-limit': c.downtimeLimit }
  if (capabilities.multifd) parameters['multifd-channels'] = c.channels
  if (capabilities.xbzrle) parameters['xbzrle-cache-size'] = c.xbzrleCacheMiB * MiB
  return { capabilities, parameters, postcopy: c.postcopy }
}

class MigrateCommand implements MigrationCommand {
  constructor(readonly choice: MigrateChoice) {}
  check(m: Readonly<MigrationModel>): boolean {
    return m.hosts > 1 && !m.paused
  }
  async run(m: MigrationModel, s: MigrationSystem): Promise<void> {
    const to = otherHost(m, this.choice.offset)
    const from = s.hosts[m.host]
    const { capabilities, parameters, postcopy } = migrateOptions(this.choice)
    const record: StepRecord = {
      kind: 'migrate',
      description: this.toString(),
      capabilities: Object.entries(capabilities)
        .filter(([, on]) => on)
        .map(([name]) => name),
    }
    try {
      await s.vm.migrate({
        to: s.hosts[to],
        capabilities,
        parameters,
        postcopy,
        timeout: s.migrationTimeout,
      })
      m.host = to
      record.completed = true
    } catch (error) {
      // A failed migration is allowed (it may not converge in time) only if it left the VM running at the source.
      record.completed = false
      if (s.vm.host !== from)
        throw new Error(`a failed migration moved the VM's handle to ${s.vm.host.name}: ${(error as Error).message}`)
    }
    await step(m, s, record)
  }
  toString(): string {
    const c = this.choice
    const o = migrateOptions(c)
    const caps = Object.entries(o.capabilities)
      .filter(([, on]) => on)
      .map(([k]) => (k === 'multifd' ? `multifd×${c.channels}` : k === 'postcopy-ram' ? 'postcopy' : k))
    const params = c.postcopy ? '' : ` downtime-limit ${c.downtimeLimit} ms, ${c.bandwidthMiB} MiB/s`
    // Hosts are counted from the VM's current one (skipping it), so the story reads the same on any cluster.
    const target = c.offset === 0 ? 'the next host' : `the host ${c.offset + 1} further on`
    const cache = o.capabilities.xbzrle ? `, xbzrle cache ${c.xbzrleCacheMiB} MiB` : ''
    return `migrate to ${target} [${caps.join(', ') || 'precopy'}]${params}${cache}`
  }
}

class PauseCommand implements MigrationCommand {
  check = (m: Readonly<MigrationModel>) => !m.paused
  async run(m: MigrationModel, s: MigrationSystem): Promise<void> {
    await s.vm.pause()
    m.paused = true
    await step(m, s, { kind: 'pause', description: this.toString() })
  }
  toString = () => 'pause'
}

class ResumeCommand implements MigrationCommand {
  check = (m: Readonly<MigrationModel>) => m.paused
  async run(m: MigrationModel, s: MigrationSystem): Promise<void> {
    await s.vm.resume()
    m.paused = false
    await step(m, s, { kind: 'resume', description: this.toString() })
  }
  toString = () => 'resume'
}

/** The tiny guest's workload: a counter in /tmp/counter, bumped every 50 ms. */
const workloadScript =
  '(i=$(cat /tmp/counter 2>/dev/null || echo 0); while :; do i=$((i+1)); echo $i > /tmp/counter.new; mv /tmp/counter.new /tmp/counter; sleep 0.05; done) >/dev/null 2>&1 & echo $! > /tmp/workload.pid'

class WorkloadCommand implements MigrationCommand {
  constructor(readonly start: boolean) {}
  check(m: Readonly<MigrationModel>): boolean {
    return !m.paused && m.workload !== this.start
  }
  async run(m: MigrationModel, s: MigrationSystem): Promise<void> {
    if (s.guest !== 'tiny')
      throw new Error('workload commands need the tiny guest: runMigrationCommands(..., { guest: "tiny" })')
    if (this.start) await s.vm.succeed(workloadScript)
    else await s.vm.succeed('kill $(cat /tmp/workload.pid) && rm /tmp/workload.pid')
    m.workload = this.start
    await step(m, s, { kind: this.start ? 'workload-start' : 'workload-stop', description: this.toString() })
  }
  toString(): string {
    return this.start ? 'start the workload' : 'stop the workload'
  }
}

const migrateChoice: fc.Arbitrary<MigrateChoice> = fc.record({
  offset: fc.nat({ max: 2 }),
  multifd: fc.boolean(),
  xbzrle: fc.boolean(),
  autoConverge: fc.boolean(),
  postcopy: fc.boolean(),
  downtimeLimit: fc.constantFrom(20_000, 5_000),
  bandwidthMiB: fc.constantFrom(4096, 1024),
  channels: fc.integer({ min: 2, max: 4 }),
  xbzrleCacheMiB: fc.constantFrom(64, 16),
})

/**
 * Commands for `fc.commands(migrationCommands(), { maxCommands })`, run with `runMigrationCommands`. With
 * `workload: true`, commands that start and stop a counter in the guest (tiny guest only).
 */
export function migrationCommands(options: MigrationCommandsOptions = {}): fc.Arbitrary<MigrationCommand>[] {
  const commands: fc.Arbitrary<MigrationCommand>[] = [
    migrateChoice.map(c => new MigrateCommand(c)),
    fc.constant(new PauseCommand()),
    fc.constant(new ResumeCommand()),
  ]
  if (options.workload) commands.push(fc.boolean().map(start => new WorkloadCommand(start)))
  if (options.faults) commands.push(...faultCommands())
  return commands
}
