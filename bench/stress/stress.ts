// Migration stress throughput on two hosts: operations per minute and migrations per minute of
// `runMigrationCommands` over `fc.commands(migrationCommands())` (a fresh 64 MiB memtest VM per run, invariants
// and a memory check after every step), next to a peer measured in the same run: the same VM migrated back and
// forth in a plain loop (precopy, no invariants, no pauses). Also prints where a stress run's time goes (boot
// vs steps), which is what instant VMs (snapshot restore, not in vt yet) would cut.
//   npm run bench:stress -- [--runs 10] [--seed 42]
import { loadavg } from 'node:os'
import fc from 'fast-check'
import type { Cluster } from '../../src/cluster/cluster.ts'
import { memtestSpec } from '../../src/migration/memtestVm.ts'
import { migrationCommands } from '../../src/migration/stress/commands.ts'
import { runMigrationCommands } from '../../src/migration/stress/run.ts'
import type { VmSpec } from '../../src/protocol/vm.ts'
import { Vm } from '../../src/vm/index.ts'
import { startAgents } from '../../test/migration/helpers/agents.ts'

const MiB = 1024 * 1024
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}
const runs = arg('--runs', 10)
const seed = arg('--seed', 42)

const cluster = await startAgents(['a', 'b'])
const hosts = cluster.hosts
const live: Vm[] = []
const createVm = async (spec: Partial<VmSpec> & { host?: unknown } = {}) => {
  const { host, ...rest } = spec
  const vm = await Vm.create(hosts[0], rest as VmSpec)
  vm.clusterHosts = hosts
  live.push(vm)
  return vm
}
const destroyAll = async () => {
  await Promise.all(live.splice(0).map(vm => vm.destroy().catch(() => {})))
}

try {
  // --- stress: fast-check runs of migration commands
  let ops = 0
  let migrations = 0
  let failedMigrations = 0
  let bootMs = 0
  const t0 = performance.now()
  await fc.assert(
    fc.asyncProperty(fc.commands(migrationCommands(), { maxCommands: 20, size: 'medium' }), async steps => {
      const started = performance.now()
      let firstStep: number | undefined
      try {
        await runMigrationCommands(
          steps,
          { cluster: { hosts } as unknown as Cluster, createVm },
          {
            onStep: step => {
              firstStep ??= performance.now()
              ops++
              if (step.kind === 'migrate') {
                migrations++
                if (!step.completed) failedMigrations++
              }
            },
          },
        )
      } finally {
        // Boot + first invariants: until the first command (or the end of a run without commands).
        bootMs += (firstStep ?? performance.now()) - started
        await destroyAll()
      }
    }),
    { numRuns: runs, seed },
  )
  const stressMin = (performance.now() - t0) / 60_000

  // --- peer: the same number of migrations, back and forth, nothing else
  const peerCount = Math.max(migrations, 4)
  const vm = await createVm(await memtestSpec({ name: 'peer', memoryMiB: 64 }))
  await vm.console.waitFor(/B{2}/, { timeout: 60_000 })
  const t1 = performance.now()
  for (let i = 0; i < peerCount; i++)
    await vm.migrate({
      to: hosts[(hosts.indexOf(vm.host) + 1) % 2],
      parameters: { 'downtime-limit': 20_000, 'max-bandwidth': 4096 * MiB },
    })
  const peerMin = (performance.now() - t1) / 60_000
  await destroyAll()

  const fmt = (n: number) => n.toFixed(1)
  console.log(
    `migration stress on 2 hosts, ${runs} runs (seed ${seed}), 64 MiB memtest guest, load average ${loadavg()[0].toFixed(1)}`,
  )
  console.log(
    `  stress:  ${ops} operations (${migrations} migrations, ${failedMigrations} failed and rolled back) in ${fmt(stressMin * 60)} s`,
  )
  console.log(`           ${fmt(ops / stressMin)} operations/min, ${fmt(migrations / stressMin)} migrations/min`)
  console.log(
    `           boot + first check ${fmt(bootMs / 1000)} s of ${fmt(stressMin * 60)} s (${fmt((100 * bootMs) / 60_000 / stressMin)}%): what instant VMs would save`,
  )
  console.log(
    `  peer:    ${peerCount} plain precopy migrations back and forth in ${fmt(peerMin * 60)} s: ${fmt(peerCount / peerMin)} migrations/min`,
  )
} finally {
  await destroyAll()
  await cluster.stop()
}
