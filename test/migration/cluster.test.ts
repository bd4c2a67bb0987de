// Faults on the real embedded two-host cluster (src/cluster/embedded.ts), each agent in its own network
// namespace: the link between the hosts is cut with nftables inside the destination's namespace while a
// migration runs. It times out, the source keeps running with its memory intact, nothing is left on the
// destination, and once the link is back the same VM migrates fine.
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Cluster } from '../../src/cluster/cluster.ts'
import { startCluster } from '../../src/cluster/embedded.ts'
import type { FullConfig, FullProject } from '../../src/config/types.ts'
import { MigrationError } from '../../src/migration/errors.ts'
import { memtestSpec, verifyMemoryIntegrity } from '../../src/migration/memtestVm.ts'
import { Vm } from '../../src/vm/index.ts'
import { requires } from '../helpers/requirements.ts'

const MiB = 1024 * 1024

test('embedded cluster: a link cut between the hosts mid-migration, then a clean migration', {
  timeout: 180_000,
}, async t => {
  if (!requires(t, 'qemu', 'root', 'netns', 'nft')) return
  const outputDir = await mkdtemp(join(tmpdir(), 'vt-mig-cluster-'))
  const started = await startCluster(
    { hosts: 2, isolation: 'netns' },
    { project: { name: 'migration-faults', outputDir } as FullProject, config: {} as FullConfig },
  )
  let cluster: Cluster | undefined
  try {
    cluster = await Cluster.connect(started.info)
    const [a, b] = cluster.hosts
    assert.notEqual(a.address, b.address, 'the hosts live in separate namespaces')
    const vm = await Vm.create(a, await memtestSpec({ name: 'mt', memoryMiB: 128 }))
    await vm.console.waitFor(/B{3}/)
    const before = await verifyMemoryIntegrity(vm)

    // Slow and never converging, so the cut surely lands mid-stream.
    const run = vm.migrate({
      to: b,
      hosts: cluster.hosts,
      timeout: 5000,
      parameters: { 'downtime-limit': 1, 'max-bandwidth': 16 * MiB },
    })
    for (const t0 = Date.now(); ; ) {
      const info = await vm.qmp('query-migrate')
      if (info.status === 'active' && (info.ram?.transferred ?? 0) > 2 * MiB) break
      if (Date.now() - t0 > 30_000) throw new Error(`migration did not get going: ${JSON.stringify(info)}`)
      await new Promise(r => setTimeout(r, 20))
    }
    // Only the hosts' link: b's agent stays reachable from the controller.
    const rules = `table inet vtcut {\n  chain input {\n    type filter hook input priority 0;\n    ip saddr ${a.address} drop\n  }\n}\n`
    await b.succeed(['nft', '-f', '-'], { stdin: rules })
    const err = await run.catch(e => e)
    assert.ok(err instanceof MigrationError, String(err))
    assert.equal(err.phase, 'migrate')
    assert.match(err.message, /within the timeout of 5000 ms/)
    assert.equal(err.sourceRunning, true)
    assert.equal(vm.host, a)
    assert.equal((await vm.qmp('query-status')).status, 'running')
    assert.deepEqual(await b.service('vm').list(), [], 'the destination VM was destroyed')
    const intact = await verifyMemoryIntegrity(vm)
    assert.ok(intact.passes > before.passes)

    await b.succeed(['nft', 'delete', 'table', 'inet', 'vtcut'])
    const result = await vm.migrate({
      to: b,
      hosts: cluster.hosts,
      parameters: { 'downtime-limit': 20_000, 'max-bandwidth': 4096 * MiB },
    })
    assert.equal(result.status, 'completed')
    assert.equal(vm.host, b)
    assert.ok((await verifyMemoryIntegrity(vm)).passes > intact.passes)
    assert.deepEqual(await a.service('vm').list(), [])
    await vm.destroy()
  } finally {
    await cluster?.close()
    await started.stop()
    await rm(outputDir, { recursive: true, force: true })
  }
})

test('embedded cluster: a disk in the shared pool migrates without copying', { timeout: 180_000 }, async t => {
  if (!requires(t, 'qemu', 'root', 'netns')) return
  const outputDir = await mkdtemp(join(tmpdir(), 'vt-mig-cluster-'))
  const started = await startCluster(
    { hosts: 2, isolation: 'netns' },
    { project: { name: 'migration-shared', outputDir } as FullProject, config: {} as FullConfig },
  )
  let cluster: Cluster | undefined
  try {
    cluster = await Cluster.connect(started.info)
    const [a, b] = cluster.hosts
    const pool = started.info.sharedPool as string
    assert.ok(pool, 'the embedded cluster offers a shared pool')
    const disk = join(pool, `shared-${process.pid}.raw`)
    await writeFile(disk, Buffer.alloc(16 * MiB))
    const vm = await Vm.create(a, {
      name: 'shared',
      image: 'tiny',
      memory: '256M',
      disks: [{ path: disk, format: 'raw', id: 'data' }],
    })
    await vm.succeed('echo written-on-a | dd of=/dev/vda conv=fsync status=none')
    const result = await vm.migrate({ to: b, hosts: cluster.hosts })
    assert.equal(result.storage, 'shared')
    assert.equal(result.storageBytes, 0, 'nothing was copied')
    assert.equal(vm.host, b)
    assert.equal(vm.info.disks[0].file, disk, 'the destination uses the same file')
    assert.equal((await vm.succeed('head -c 12 /dev/vda')).trim(), 'written-on-a')
    await vm.destroy()
    await rm(disk, { force: true })
  } finally {
    await cluster?.close()
    await started.stop()
    await rm(outputDir, { recursive: true, force: true })
  }
})
