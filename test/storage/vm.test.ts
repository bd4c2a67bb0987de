// Volumes under real VMs on the real embedded two-host cluster: a clone of a base as a VM's disk, a live
// backup of it while the VM runs (QEMU's blockdev-backup, then a copy to the other host over NBD), the backup
// booted on the other host with the data written before the backup; a dir-pool disk refused by a migration
// without copying. Nothing of the run is left afterwards.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Cluster } from '../../src/cluster/cluster.ts'
import { startCluster } from '../../src/cluster/embedded.ts'
import type { FullConfig, FullProject } from '../../src/config/types.ts'
import { Vm } from '../../src/vm/index.ts'
import { leftovers } from '../cluster/helpers.ts'
import { requires } from '../helpers/requirements.ts'

test('a clone as a VM disk, a live backup restored and booted on the other host', { timeout: 240_000 }, async t => {
  if (!requires(t, 'qemu')) return
  const outputDir = await mkdtemp(join(tmpdir(), 'vt-storage-vm-'))
  const started = await startCluster(
    { hosts: 2, storage: { pools: { local: { type: 'dir' } } } },
    { project: { name: 'storage-vm', outputDir } as FullProject, config: {} as FullConfig },
  )
  let cluster: Cluster | undefined
  try {
    cluster = await Cluster.connect(started.info)
    const [a, b] = cluster.hosts
    const pool = cluster.pool('local')
    const base = await pool.on(a).create('base', { size: '64M' })
    const disk = await base.clone('disk-1')
    const vm = await Vm.create(a, { name: 'st1', image: 'tiny', memory: 128, disks: [{ volume: disk.ref }] })
    disk.users.add(vm)
    await vm.succeed('printf "before-backup" | dd of=/dev/vda bs=512 count=1 conv=fsync 2>/dev/null')

    const progress: number[] = []
    const bak = await disk.backup(pool.on(b), 'disk-1.bak', { onProgress: p => progress.push(p.done) })
    await vm.succeed('printf "after--backup" | dd of=/dev/vda bs=512 count=1 conv=fsync 2>/dev/null')
    assert.equal(progress.at(-1), 64 * 1024 * 1024, 'the copy reported its progress to the end')
    assert.equal(bak.host, b)
    const info = await bak.info()
    assert.equal(info.backing, undefined, 'a backup stands alone')
    assert.deepEqual(await bak.check(), { ok: true, corruptions: 0, leaks: 0, checkErrors: 0 })
    assert.deepEqual(
      (await pool.on(a).list()).map(v => v.name),
      ['base', 'disk-1'],
      'the temporary backup on the source host is gone',
    )

    const vm2 = await Vm.create(b, { name: 'st2', image: 'tiny', memory: 128, disks: [{ volume: bak.ref }] })
    assert.equal(await vm2.succeed('dd if=/dev/vda bs=13 count=1 2>/dev/null'), 'before-backup')
    assert.equal(await vm.succeed('dd if=/dev/vda bs=13 count=1 2>/dev/null'), 'after--backup')

    await assert.rejects(
      vm.migrate({ to: b, hosts: cluster.hosts }),
      /disk disk0 of st1 is volume disk-1 of dir pool "local", which host2 cannot see .*storage: 'copy'/,
    )
    await vm2.destroy()
    await vm.destroy()
    for (const v of [bak, disk, base]) assert.equal(await v.remove(), true)
  } finally {
    await cluster?.close()
    await started.stop()
    await rm(outputDir, { recursive: true, force: true })
  }
  assert.deepEqual(leftovers(started.info), [])
})
