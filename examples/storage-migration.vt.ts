// Migration without shared storage (project `two-host`): the VM's host-local data disk is copied the way
// libvirt does it (an NBD export on the destination, a block mirror from the source, switch-over when the
// mirror is ready), and the data written before the move is there afterwards.
import { expect, MigrationError, memtestSpec, test, verifyMemoryIntegrity } from 'vmtest-cluster'

const MiB = 1024 * 1024

test('a host-local disk is copied during migration', async ({ cluster, createVm }) => {
  const [src, dst] = cluster.hosts
  const vm = await createVm({ host: src, disks: [{ size: '64M', format: 'raw', bus: 'virtio', id: 'data' }] })
  await vm.succeed('dd if=/dev/urandom of=/dev/vda bs=1M count=8 conv=fsync status=none')
  const sum = await vm.succeed('dd if=/dev/vda bs=1M count=8 status=none | md5sum')

  // Without `storage: 'copy'` vt refuses: the destination could not see the disk.
  const refused = await vm.migrate({ to: dst }).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(refused).toBeInstanceOf(MigrationError)
  expect((refused as MigrationError).message).toContain("storage: 'copy'")
  expect(vm.host).toBe(src)

  const result = await vm.migrate({ to: dst, storage: 'copy' })
  expect(result.storage).toBe('copy')
  expect(result.storageBytes).toBe(64 * MiB)
  expect(vm.host).toBe(dst)
  expect(await vm.succeed('dd if=/dev/vda bs=1M count=8 status=none | md5sum')).toBe(sum)
})

test('guest memory is intact after a migration with storage copy', async ({ cluster, createVm }) => {
  const [src, dst] = cluster.hosts
  const spec = await memtestSpec({ name: 'memtest-copy', memoryMiB: 128, extraDisks: [{ size: '16M', id: 'data' }] })
  const vm = await createVm({ ...spec, host: src })
  await vm.console.waitFor(/B{3}/)
  const result = await vm.migrate({
    to: dst,
    storage: 'copy',
    parameters: { 'downtime-limit': 20_000, 'max-bandwidth': 4096 * MiB },
  })
  expect(result.storageBytes).toBe(16 * MiB)
  await verifyMemoryIntegrity(vm)
})
