// Live migration on the embedded two-host cluster (project `two-host`): a workload keeps running across
// vm.migrate(), and vt's memtest guest proves that no page of guest memory was lost, in every mode.
import { expect, type MigrateVmOptions, memtestSpec, test, verifyMemoryIntegrity } from 'vmtest-cluster'

const MiB = 1024 * 1024

test.describe('live migration', () => {
  test('a workload keeps running after migration', async ({ cluster, vm }) => {
    const [src, dst] = cluster.hosts
    expect(vm.host).toBe(src)
    await test.step('start a workload', async () => {
      await vm.succeed('(i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.1; done) >/dev/null 2>&1 &')
      await vm.waitUntilSucceeds('test "$(cat /tmp/counter)" -gt 3')
    })
    const result = await vm.migrate({
      to: dst,
      // The guest answers while it is being migrated...
      during: async v => expect(Number(await v.succeed('cat /tmp/counter'))).toBeGreaterThan(0),
      // ...and its workload goes on counting on the destination.
      after: async v => {
        const now = Number(await v.succeed('cat /tmp/counter'))
        await v.waitUntilSucceeds(`test "$(cat /tmp/counter)" -gt ${now}`)
      },
    })
    expect(vm.host).toBe(dst)
    expect(result.status).toBe('completed')
    expect(result.downtimeMs).toBeLessThan(2000)
    expect(result.transferredBytes).toBeGreaterThan(0)
    expect(await vm.succeed('hostname')).toBeTruthy()
    expect((await vm.qmp('query-status')).status).toBe('running')
  })

  // The memtest guest rewrites its whole range every few ms: precopy alone converges only with a long final
  // pass, which the other modes avoid.
  const converge = { 'downtime-limit': 20_000, 'max-bandwidth': 4096 * MiB }
  const modes: [string, Omit<MigrateVmOptions, 'to'>][] = [
    ['precopy', { parameters: converge }],
    ['multifd', { capabilities: { multifd: true }, parameters: { ...converge, 'multifd-channels': 2 } }],
    // Precopy must not converge on its own (1 ms downtime limit, 64 MiB/s before the switch; postcopy itself is
    // not limited), or QEMU completes before the switch to postcopy.
    ['postcopy', { postcopy: true, parameters: { 'max-bandwidth': 64 * MiB, 'downtime-limit': 1 } }],
    ['xbzrle', { capabilities: { xbzrle: true }, parameters: { ...converge, 'xbzrle-cache-size': 256 * MiB } }],
    ['auto-converge', { capabilities: { 'auto-converge': true }, parameters: { 'downtime-limit': 2000 } }],
  ]
  for (const [mode, options] of modes) {
    test(`guest memory is intact after ${mode}`, async ({ cluster, createVm }) => {
      const [src, dst] = cluster.hosts
      const spec = await memtestSpec({ name: `memtest-${mode}`, memoryMiB: 128 })
      const vm = await createVm({ ...spec, host: src })
      await vm.console.waitFor(/B{3}/)
      const before = await verifyMemoryIntegrity(vm)
      const result = await vm.migrate({ to: dst, ...options })
      expect(vm.host).toBe(dst)
      if (mode === 'postcopy') expect(result.postcopy).toBe(true)
      const after = await verifyMemoryIntegrity(vm)
      // The destination continued the guest (its count of passes went on), it did not boot a new one.
      expect(after.passes).toBeGreaterThan(before.passes)
    })
  }
})
