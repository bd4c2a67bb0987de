// Fault commands of migration stress (`migrationCommands({ faults: true })`), from `cluster.faults`: a partition
// between source and destination mid-migration (then healed), a migration over a slowed link, the destination's
// QEMU killed mid-migration, the destination's agent restarted mid-migration (its QEMU dies with it; the host
// must take later migrations). A migration a fault broke must leave the VM running intact at its source: the
// invariants after the step check exactly that.
import fc from 'fast-check'
import type { Fault } from '../../cluster/faults.ts'
import { afterStep } from './invariants.ts'
import {
  type MigrationCommand,
  type MigrationModel,
  type MigrationSystem,
  otherHost,
  type StepRecord,
} from './model.ts'

const MiB = 1024 * 1024
// Never converges on its own (the memtest guest dirties faster than 16 MiB/s with 1 ms allowed downtime): the
// migration is still running when the fault hits.
const slow = { 'max-bandwidth': 16 * MiB, 'downtime-limit': 1 }
const converge = { 'max-bandwidth': 4096 * MiB, 'downtime-limit': 20_000 }

type FaultKind = 'partition' | 'slow-link' | 'kill-destination' | 'restart-agent'

async function transferred(s: MigrationSystem, bytes: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const info = await s.vm.qmp('query-migrate')
    if ((info.ram?.transferred ?? 0) > bytes) return
    if (Date.now() > deadline) throw new Error(`the migration did not transfer ${bytes} bytes in ${timeoutMs} ms`)
    await new Promise(r => setTimeout(r, 50))
  }
}

class FaultCommand implements MigrationCommand {
  constructor(
    readonly kind: FaultKind,
    readonly offset: number,
  ) {}
  check(m: Readonly<MigrationModel>): boolean {
    return m.hosts > 1 && !m.paused
  }
  async run(m: MigrationModel, s: MigrationSystem): Promise<void> {
    const faults = s.faults
    if (!faults) throw new Error('fault commands need cluster.faults: pass the cluster fixture to runMigrationCommands')
    const to = otherHost(m, this.offset)
    const [a, b] = [s.hosts[m.host], s.hosts[to]]
    const record: StepRecord = { kind: this.kind, description: this.toString(), capabilities: [] }
    let fault: Fault | undefined
    let restart: Promise<Fault> | undefined
    try {
      if (this.kind === 'slow-link') {
        fault = await faults.slowLink(a, b, { rate: '200mbit' })
        await s.vm.migrate({ to: b, parameters: converge, timeout: s.migrationTimeout })
        m.host = to
        record.completed = true
      } else {
        const failed = await s.vm
          .migrate({
            to: b,
            parameters: slow,
            timeout: s.migrationTimeout,
            during: async () => {
              await transferred(s, MiB)
              if (this.kind === 'partition') fault = await faults.partition(a, b)
              else if (this.kind === 'restart-agent') await (restart = faults.restartAgent(b))
              else await faults.killQemu(s.vm, { host: b })
            },
          })
          .then(
            () => undefined,
            (e: unknown) => e,
          )
        if (failed === undefined) throw new Error(`the migration completed although ${this.toString()}`)
        record.completed = false
      }
    } catch (error) {
      if (s.vm.host !== a) throw error
      record.completed = false
    } finally {
      // A migration that failed does not wait for `during`: the agent must be back before the next step.
      await restart
      await fault?.heal()
    }
    await afterStep(m, s, record)
  }
  toString(): string {
    const target = this.offset === 0 ? 'the next host' : `the host ${this.offset + 1} further on`
    if (this.kind === 'slow-link') return `migrate to ${target} over a link slowed to 200 Mbit/s (then healed)`
    if (this.kind === 'partition') return `migrate to ${target}, partition the two hosts mid-migration (then heal)`
    if (this.kind === 'restart-agent') return `migrate to ${target}, restart the destination's agent mid-migration`
    return `migrate to ${target}, kill the destination's QEMU mid-migration`
  }
}

export function faultCommands(): fc.Arbitrary<MigrationCommand>[] {
  return [
    fc
      .tuple(
        fc.constantFrom<FaultKind>('partition', 'slow-link', 'kill-destination', 'restart-agent'),
        fc.nat({ max: 2 }),
      )
      .map(([kind, offset]) => new FaultCommand(kind, offset)),
  ]
}
