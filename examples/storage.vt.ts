// Storage pools and images on the two-host embedded cluster (project `storage` in vt.config.ts, with a dir pool
// `local`: a directory per host, and an nfs pool `shared`). A base image and clones of it booted on both hosts, a
// snapshot taken and restored, a live backup of a running VM's disk restored and booted on the other host, a VM on
// the nfs pool migrated without copying its disk. `baseImage` and `disk`
// are the built-in image fixtures: a base per worker and a clone of it per test, removed after the test.
import { expect, test } from 'vmtest-cluster'

const read = 'dd if=/dev/vda bs=16 count=1 2>/dev/null'
const write = (text: string) => `printf '%-16s' ${text} | dd of=/dev/vda bs=16 count=1 conv=fsync 2>/dev/null`

test('a base image and clones of it booted on both hosts', async ({ cluster, hosts, createVm }) => {
  const [a, b] = hosts
  const local = cluster.pool('local')
  const base = await local.on(a).create('example-base', { size: '64M' })
  const writer = await createVm({ disks: [{ volume: base }] })
  await writer.succeed(write('base-data'))
  await writer.destroy()

  // A dir pool is host-local: the base goes to b as a copy, then every clone is an O(1) overlay.
  const baseOnB = await base.backup(local.on(b), 'example-base')
  const clones = [await base.clone('example-c1'), await base.clone('example-c2'), await baseOnB.clone('example-c3')]
  const vms = await Promise.all(clones.map(disk => createVm({ disks: [{ volume: disk }] })))
  expect(vms.map(vm => vm.host.name)).toEqual([a.name, a.name, b.name])
  for (const vm of vms) expect((await vm.succeed(read)).trim()).toBe('base-data')
  await vms[0].succeed(write('mine'))
  expect((await vms[1].succeed(read)).trim()).toBe('base-data') // clones do not share writes

  await Promise.all(vms.map(vm => vm.destroy()))
  for (const image of [...clones, base, baseOnB]) await image.remove()
})

test('a snapshot taken and restored', async ({ disk, createVm }) => {
  let vm = await createVm({ disks: [{ volume: disk }] })
  await vm.succeed(write('clean'))
  await vm.destroy() // an internal snapshot is taken with the disk at rest
  await disk.snapshot('clean')
  vm = await createVm({ disks: [{ volume: disk }] })
  await vm.succeed(write('broken'))
  await vm.destroy()

  await disk.restore('clean')
  expect((await disk.snapshots()).map(s => s.name)).toEqual(['clean'])
  vm = await createVm({ disks: [{ volume: disk }] })
  expect((await vm.succeed(read)).trim()).toBe('clean')
})

test("a live backup of a running VM's disk, restored and booted on the other host", async ({
  cluster,
  disk,
  hosts,
  createVm,
}) => {
  const vm = await createVm({ disks: [{ volume: disk }] })
  await vm.succeed(write('at-backup'))
  // QEMU's block job copies the disk as it is now while the guest keeps writing; then it goes to host b.
  const other = hosts.find(h => h !== vm.host) ?? hosts[1]
  const backup = await disk.backup(cluster.pool('local').on(other), 'example-live-backup')
  await vm.succeed(write('later'))
  expect(await backup.check()).toMatchObject({ ok: true })

  const restored = await createVm({ disks: [{ volume: backup }] })
  expect(restored.host).toBe(other)
  expect((await restored.succeed(read)).trim()).toBe('at-backup')
  await restored.destroy()
  await backup.remove()
})

// NFS pool `shared`: one export every host sees, served by the embedded cluster's own NFS server (docs/nfs.md).
test('a VM whose disk is in the nfs pool migrates without copying its disk', async ({ cluster, hosts, createVm }) => {
  const [a, b] = hosts
  const disk = await cluster.pool('shared').create('example-nfs-disk', { size: '64M' })
  const vm = await createVm({ host: a, disks: [{ volume: disk }] })
  await vm.succeed(write('on-nfs'))

  const result = await vm.migrate({ to: b })
  expect(result.storage).toBe('shared')
  expect(result.storageBytes).toBe(0) // not a byte of disk was sent: both hosts open the same nfs:// volume
  expect(vm.host).toBe(b)
  expect((await vm.succeed(read)).trim()).toBe('on-nfs')
  await vm.destroy()
  await disk.remove()
})
