// Migration stress throughput on two hosts: operations per minute and migrations per minute of
// `runMigrationCommands` over stories of `fc.commands(migrationCommands())` (a 64 MiB memtest VM per run,
// invariants and a memory check after every step), each story run twice in the same process: once booting its
// VM (firmware, boot sector, two passes), once starting it as a clone of a warm snapshot (instant VMs,
// `memtestSnapshot`); the two kinds alternate run by run so that the machine's load hits both alike. Next to
// them, a peer: the same VM migrated back and forth in a plain loop (precopy, no invariants, no pauses). Then the
// same for the tiny Linux guest with the workload commands (128 MiB, no memory check): booted vs started from the
// host's template cache (`template: true`, what the createVm fixture does by default).
//   npm run bench:stress -- [--runs 10] [--tiny-runs 4] [--seed 42]
import { loadavg } from 'node:os'
import fc from 'fast-check'
import type { Cluster } from '../../src/cluster/cluster.ts'
import { memtestSpec } from '../../src/migration/memtestVm.ts'
import { type MigrationCommand, migrationCommands } from '../../src/migration/stress/commands.ts'
import { memtestSnapshot } from '../../src/migration/stress/instant.ts'
import { runMigrationCommands, type StressFixtures } from '../../src/migration/stress/run.ts'
import type { VmSpec } from '../../src/protocol/vm.ts'
import { Vm } from '../../src/vm/index.ts'
import { startAgents } from '../../test/migration/helpers/agents.ts'

const MiB = 1024 * 1024
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}
const runs = arg('--runs', 10)
const tinyRuns = arg('--tiny-runs', 4)
const seed = arg('--seed', 42)

const cluster = await startAgents(['a', 'b'])
const hosts = cluster.hosts
const live: Vm[] = []
let createMs = 0
/** Tiny guest: start from the template cache (instant) or boot. */
let template = false
const fixtures: StressFixtures = {
  cluster: { hosts } as unknown as Cluster,
  createVm: async (spec = {}) => {
    const { host, ...rest } = spec
    const t = performance.now()
    const vm = await Vm.create(hosts.find(h => h === host) ?? hosts[0], { ...(rest as VmSpec), template })
    createMs += performance.now() - t
    vm.clusterHosts = hosts
    live.push(vm)
    return vm
  },
}
const destroyAll = async () => {
  await Promise.all(live.splice(0).map(vm => vm.destroy().catch(() => {})))
}

interface Tally {
  ops: number
  migrations: number
  failed: number
  /** Creating the VM, until the agent reports it ready. */
  createMs: number
  /** Until the first command: creating the VM, its first two passes (boot only), the first invariants. */
  startMs: number
  totalMs: number
}
const tally = (): Tally => ({ ops: 0, migrations: 0, failed: 0, createMs: 0, startMs: 0, totalMs: 0 })

async function runStory(
  steps: Iterable<MigrationCommand>,
  t: Tally,
  options: { from?: Awaited<ReturnType<typeof memtestSnapshot>>; tiny?: boolean } = {},
) {
  const started = performance.now()
  createMs = 0
  let ready: number | undefined
  try {
    await runMigrationCommands(steps, fixtures, {
      ...(options.from ? { from: options.from } : {}),
      ...(options.tiny ? { guest: 'tiny' as const, memoryMiB: 128 } : {}),
      onReady: () => {
        ready = performance.now()
      },
      onStep: step => {
        t.ops++
        if (step.kind === 'migrate') {
          t.migrations++
          if (!step.completed) t.failed++
        }
      },
    })
  } finally {
    const end = performance.now()
    t.startMs += (ready ?? end) - started
    t.createMs += createMs
    // Destroying the VM is part of a run (a test-scoped fixture does it between runs).
    await destroyAll()
    t.totalMs += performance.now() - started
  }
}

try {
  const t0 = performance.now()
  // Kept alive (paused) by not going through `live`: it holds the snapshot every instant run clones.
  const warmFixtures: StressFixtures = {
    ...fixtures,
    createVm: async (spec = {}) => {
      const { host: _host, ...rest } = spec
      const vm = await Vm.create(hosts[0], { ...(rest as VmSpec), name: 'warm' })
      vm.clusterHosts = hosts
      return vm
    },
  }
  const warm = await memtestSnapshot(warmFixtures, { name: 'warm' })
  const warmMs = performance.now() - t0

  // The same stories for both kinds (same seed); fast-check's commands keep state, so each kind gets its own.
  const stories = () =>
    fc.sample(fc.commands(migrationCommands(), { maxCommands: 20, size: 'medium' }), { seed, numRuns: runs })
  const bootStories = stories()
  const instantStories = stories()
  const boot = tally()
  const instant = tally()
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? ['boot', 'instant'] : ['instant', 'boot']
    for (const kind of order) {
      if (kind === 'boot') await runStory(bootStories[i], boot)
      else await runStory(instantStories[i], instant, { from: warm })
    }
  }

  // --- the tiny Linux guest with its workload: booted vs from the template cache (built first, not counted)
  template = true
  await runStory([], tally(), { tiny: true })
  const tinyStories = () =>
    fc.sample(fc.commands(migrationCommands({ workload: true }), { maxCommands: 10 }), { seed, numRuns: tinyRuns })
  const tinyBootStories = tinyStories()
  const tinyInstantStories = tinyStories()
  const tinyBoot = tally()
  const tinyInstant = tally()
  for (let i = 0; i < tinyRuns; i++) {
    for (const kind of i % 2 === 0 ? ['boot', 'instant'] : ['instant', 'boot']) {
      template = kind === 'instant'
      await runStory(
        (kind === 'boot' ? tinyBootStories : tinyInstantStories)[i],
        kind === 'boot' ? tinyBoot : tinyInstant,
        {
          tiny: true,
        },
      )
    }
  }
  template = false

  // --- peer: the same number of migrations, back and forth, nothing else
  const peerCount = Math.max(boot.migrations, 4)
  const vm = await fixtures.createVm(await memtestSpec({ name: 'peer', memoryMiB: 64 }))
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
  const row = (label: string, t: Tally, n = runs) => {
    const min = t.totalMs / 60_000
    console.log(
      `  ${label} ${fmt(t.ops / min)} operations/min, ${fmt(t.migrations / min)} migrations/min: ${t.ops} operations ` +
        `(${t.migrations} migrations, ${t.failed} failed and rolled back) in ${fmt(t.totalMs / 1000)} s`,
    )
    console.log(
      `           VM start ${fmt(t.createMs / n)} ms/run; start + first check ${fmt(t.startMs / 1000)} s ` +
        `(${fmt((100 * t.startMs) / t.totalMs)}% of the time)`,
    )
  }
  console.log(
    `migration stress on 2 hosts, ${runs} runs (seed ${seed}) each run twice, 64 MiB memtest guest, ` +
      `load average ${loadavg()[0].toFixed(1)} at the end`,
  )
  row('boot:   ', boot)
  row('instant:', instant)
  console.log(`           (the warm snapshot: boot, two passes, a check and the save, once: ${fmt(warmMs)} ms)`)
  console.log(
    `  instant/boot: ${fmt(boot.totalMs / instant.totalMs)}x the operations/min, VM start ` +
      `${fmt(boot.createMs / Math.max(instant.createMs, 1))}x faster`,
  )
  console.log(`tiny Linux guest (128 MiB) with the workload commands, ${tinyRuns} runs each run twice, no memory check`)
  row('boot:   ', tinyBoot, tinyRuns)
  row('instant:', tinyInstant, tinyRuns)
  console.log(
    `  instant/boot: ${fmt(tinyBoot.totalMs / tinyInstant.totalMs)}x the operations/min, VM start ` +
      `${fmt(tinyBoot.createMs / Math.max(tinyInstant.createMs, 1))}x faster`,
  )
  console.log(
    `  peer:    ${peerCount} plain precopy migrations back and forth in ${fmt(peerMin * 60)} s: ${fmt(peerCount / peerMin)} migrations/min`,
  )
} finally {
  await destroyAll()
  await Promise.all(
    hosts.map(h =>
      h
        .service('vm')
        .destroy('warm')
        .catch(() => {}),
    ),
  )
  await cluster.stop()
}
