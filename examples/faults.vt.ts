// The nemesis on the embedded two-host cluster (project `network`): faults injected between hosts while a
// memtest guest migrates. Every fault is a step, and whatever a test leaves is healed at its end.
import {
  expect,
  fc,
  MigrationError,
  memtestSpec,
  migrationCommands,
  runMigrationCommands,
  test,
  verifyMemoryIntegrity,
} from 'vt'

const MiB = 1024 * 1024
// Never converges on its own (the memtest guest dirties its memory faster than 16 MiB/s, 1 ms allowed
// downtime): the migration is still running when the fault hits.
const slow = { 'max-bandwidth': 16 * MiB, 'downtime-limit': 1 }
// The memtest guest needs a long final pass to converge.
const converge = { 'max-bandwidth': 4096 * MiB, 'downtime-limit': 20_000 }

test('partition during migration: the source keeps running intact, the retry after heal succeeds', async ({
  cluster,
  createVm,
}) => {
  const [a, b] = cluster.hosts
  const vm = await createVm({ ...(await memtestSpec({ name: 'mt-partition', memoryMiB: 128 })), host: a })
  await vm.console.waitFor(/B{3}/)
  let cut: Awaited<ReturnType<typeof cluster.faults.partition>> | undefined
  const failed = await vm
    .migrate({
      to: b,
      timeout: 8000,
      parameters: slow,
      during: async () => {
        await expect.poll(async () => (await vm.qmp('query-migrate')).ram?.transferred ?? 0).toBeGreaterThan(MiB)
        cut = await cluster.faults.partition(a, b)
      },
    })
    .catch(e => e)
  expect(failed).toBeInstanceOf(MigrationError)
  expect(failed.sourceRunning).toBe(true)
  expect(vm.host).toBe(a)
  expect((await vm.qmp('query-status')).status).toBe('running')
  await verifyMemoryIntegrity(vm)
  await cut?.heal()
  // At once: the source has really left the failed migration, so QEMU takes a new one.
  const result = await vm.migrate({ to: b, parameters: converge })
  expect(result.status).toBe('completed')
  expect(vm.host).toBe(b)
  await verifyMemoryIntegrity(vm)
})

test('slow link: migration is slower but completes', async ({ cluster, createVm }) => {
  const [a, b] = cluster.hosts
  const vm = await createVm({ ...(await memtestSpec({ name: 'mt-slow', memoryMiB: 64 })), host: a })
  await vm.console.waitFor(/B{3}/)
  const fast = await vm.migrate({ to: b, parameters: converge })
  const link = await cluster.faults.slowLink(a, b, { rate: '80mbit' })
  const slowed = await vm.migrate({ to: a, parameters: converge })
  await link.heal()
  expect(slowed.status).toBe('completed')
  // 64 MiB at 80 Mbit/s takes more than 6 s; unshaped, the same transfer runs at hundreds of Mbit/s.
  expect(slowed.throughputMbps).toBeLessThan(100)
  expect(fast.throughputMbps).toBeGreaterThan(slowed.throughputMbps)
  await verifyMemoryIntegrity(vm)
})

test('QEMU killed on the destination mid-migration: the source keeps running intact', async ({ cluster, createVm }) => {
  const [a, b] = cluster.hosts
  const vm = await createVm({ ...(await memtestSpec({ name: 'mt-kill', memoryMiB: 128 })), host: a })
  await vm.console.waitFor(/B{3}/)
  const failed = await vm
    .migrate({
      to: b,
      parameters: slow,
      during: async () => {
        await expect.poll(async () => (await vm.qmp('query-migrate')).ram?.transferred ?? 0).toBeGreaterThan(MiB)
        await cluster.faults.killQemu(vm, { host: b })
      },
    })
    .catch(e => e)
  expect(failed).toBeInstanceOf(MigrationError)
  expect(failed.sourceRunning).toBe(true)
  expect(vm.host).toBe(a)
  await verifyMemoryIntegrity(vm)
})

test('partition before migration: a clear failure at once, and a migration right after the heal succeeds', async ({
  cluster,
  createVm,
}) => {
  const [a, b] = cluster.hosts
  const vm = await createVm({ ...(await memtestSpec({ name: 'mt-cut-first', memoryMiB: 64 })), host: a })
  await vm.console.waitFor(/B{3}/)
  const cut = await cluster.faults.partition(a, b)
  // vt checks the path before QEMU's connect, which a partition would leave hanging (and uncancellable).
  const failed = await vm.migrate({ to: b, timeout: 5000, parameters: converge }).catch(e => e)
  expect(failed).toBeInstanceOf(MigrationError)
  expect(failed.message).toMatch(/cannot reach .* \(partitioned\?\)/)
  expect(failed.sourceRunning).toBe(true)
  await cut.heal()
  const result = await vm.migrate({ to: b, parameters: converge })
  expect(result.status).toBe('completed')
  await verifyMemoryIntegrity(vm)
})

test('the destination agent restarted mid-migration: the source keeps running intact, the host takes the retry', async ({
  cluster,
  createVm,
}) => {
  const [a, b] = cluster.hosts
  const vm = await createVm({ ...(await memtestSpec({ name: 'mt-restart', memoryMiB: 64 })), host: a })
  await vm.console.waitFor(/B{3}/)
  let restart: Promise<unknown> | undefined
  const failed = await vm
    .migrate({
      to: b,
      parameters: slow,
      during: async () => {
        await expect.poll(async () => (await vm.qmp('query-migrate')).ram?.transferred ?? 0).toBeGreaterThan(MiB)
        restart = cluster.faults.restartAgent(b)
        await restart
      },
    })
    .catch(e => e)
  await restart // the agent is back and this worker has a new session there
  expect(failed).toBeInstanceOf(MigrationError)
  expect(failed.sourceRunning).toBe(true)
  expect(vm.host).toBe(a)
  await verifyMemoryIntegrity(vm)
  // The destination QEMU died with the old agent; the new one has nothing of this session's.
  expect(await b.service('vm').list()).toEqual([])
  const result = await vm.migrate({ to: b, parameters: converge })
  expect(result.status).toBe('completed')
  await verifyMemoryIntegrity(vm)
})

// Migration stress with the nemesis (a few short stories here; the @stress project runs long ones on four hosts).
test.prop(
  { steps: fc.commands(migrationCommands({ faults: true }), { maxCommands: 4 }) },
  { numRuns: 3, timeout: 600_000 },
)('short stories of migrations and faults keep the guest intact', async ({ cluster, createVm }, { steps }) => {
  await runMigrationCommands(steps, { cluster, createVm })
})
