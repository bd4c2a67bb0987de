// Property-based migration stress: fast-check generates sequences of migrations (to a random other host, with
// random capabilities and parameters), pauses and resumes; after every step the invariants hold (the VM runs
// on exactly one host in the state the model expects, no QEMU of it is left elsewhere, its memory is intact,
// its counter only grows). A failure shrinks to the shortest story and prints the seed and the command line
// that replays it. Project `two-host` runs the first property (CI); the `@stress` ones run on four hosts with
// `VT_STRESS=1 npx vt test --project stress` (see vt.config.ts).
import { test as base, fc, memtestSnapshot, migrationCommands, runMigrationCommands, type VmSnapshot } from 'vt'

// Instant VMs: one memtest guest per worker, booted, checked and saved once (a worker-scoped VM holds the
// snapshot); each run's guest is a clone of it instead of a boot, and its memory is checked before the first step.
const test = base.extend<{}, { warmMemtest: VmSnapshot }>({
  warmMemtest: [
    async ({ cluster, createWorkerVm }, use) => {
      await use(await memtestSnapshot({ cluster, createVm: createWorkerVm }))
    },
    { scope: 'worker' },
  ],
})

// 30 runs of up to 20 steps ('small' sizes: most runs have a few steps, some up to 10) fit in about two minutes
// on a loaded 2-core TCG machine; 'medium' (up to 20, about 10 on average) takes several times longer.
test.prop({ steps: fc.commands(migrationCommands(), { maxCommands: 20 }) }, { numRuns: 30, timeout: 300_000 })(
  'any sequence of migrations, pauses and resumes keeps the guest intact',
  async ({ cluster, createVm, warmMemtest }, { steps }) => {
    await runMigrationCommands(steps, { cluster, createVm }, { from: warmMemtest })
  },
)

test.describe('@stress', () => {
  test.prop(
    { steps: fc.commands(migrationCommands(), { maxCommands: 40, size: 'max' }) },
    { numRuns: 100, timeout: 900_000 },
  )(
    'long sequences of migrations across every host keep the guest intact',
    async ({ cluster, createVm }, { steps }) => {
      await runMigrationCommands(steps, { cluster, createVm })
    },
  )

  test.prop(
    { steps: fc.commands(migrationCommands({ faults: true }), { maxCommands: 20, size: 'medium' }) },
    { numRuns: 30, timeout: 900_000 },
  )(
    'migrations with partitions, slow links, killed QEMUs and restarted agents keep the guest intact',
    async ({ cluster, createVm }, { steps }) => {
      await runMigrationCommands(steps, { cluster, createVm })
    },
  )

  test.prop(
    { steps: fc.commands(migrationCommands({ workload: true }), { maxCommands: 20, size: 'medium' }) },
    { numRuns: 20, timeout: 900_000 },
  )(
    "a Linux guest's workload counter only grows across migrations and pauses",
    async ({ cluster, createVm }, { steps }) => {
      await runMigrationCommands(steps, { cluster, createVm }, { guest: 'tiny' })
    },
  )
})
