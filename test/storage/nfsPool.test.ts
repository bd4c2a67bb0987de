// The nfs pool against the embedded cluster's real NFS server: two hosts write and read the same export through
// the pool's volumes, clone and list from either side, refusals (a symlink in the export, bad names), capacity,
// a remote-style pool naming a server that is not there, and a session's volumes removed over NFS when it ends.
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { Cluster } from '../../src/cluster/cluster.ts'
import { startCluster } from '../../src/cluster/embedded.ts'
import type { ClusterConfig } from '../../src/config/cluster.ts'
import { Pool } from '../../src/storage/pool.ts'
import { leftovers } from '../cluster/helpers.ts'
import { requires } from '../helpers/requirements.ts'

const out = mkdtempSync(join(os.tmpdir(), 'vt-nfs-pool-'))
after(() => rmSync(out, { recursive: true, force: true }))

const config: ClusterConfig = { hosts: 2, storage: { pools: { shared: { type: 'nfs' } } } }

test('nfs pool: two hosts share the export (write on one, read and clone on the other); refusals; reaped over NFS', async t => {
  if (!requires(t, 'netns', 'qemu')) return
  const started = await startCluster(config, { project: { name: 'nfs', outputDir: out } as never, config: {} as never })
  t.after(async () => {
    await started.stop()
    assert.deepEqual(leftovers(started.info), [])
  })
  const def = started.info.pools?.shared
  assert.ok(def?.type === 'nfs' && def.server && def.export, 'the embedded server is filled into the pool')
  const exportDir = def.export
  const cluster = await Cluster.connect(started.info)
  try {
    const [h1, h2] = cluster.hosts
    const pool = cluster.pool('shared')
    assert.equal(pool.shared, true)
    const a = await pool.on(h1).create('a.qcow2', { size: '16M', format: 'qcow2' })
    const info = await a.info()
    assert.equal(info.filename, `nfs://${def.server}${exportDir}/a.qcow2`)
    // host1 writes through QEMU's NFS client, host2 reads the same bytes back through its own.
    await h1.succeed(['qemu-io', '-c', 'write -P 0x5a 1M 2M', info.filename])
    const read = await h2.succeed(['qemu-io', '-r', '-c', 'read -P 0x5a 1M 2M', info.filename])
    assert.match(read, /read 2097152\/2097152 bytes/)
    assert.doesNotMatch(read, /Pattern verification failed/)
    // A clone made on host2 reads host1's data on host1.
    const b = await pool.on(h2).volume('a.qcow2').clone('b.qcow2')
    assert.equal((await b.info()).backing, info.filename)
    assert.doesNotMatch(
      await h1.succeed(['qemu-io', '-r', '-c', 'read -P 0x5a 1M 2M', (await b.info()).filename]),
      /Pattern verification failed/,
    )
    assert.deepEqual(
      (await pool.on(h2).list()).map(v => v.name),
      ['a.qcow2', 'b.qcow2'],
    )
    const cap = await pool.capacity()
    assert.equal(cap.volumes, 2)
    assert.ok(cap.totalBytes > 0 && cap.freeBytes <= cap.totalBytes && cap.usedBytes >= 2 * 1024 * 1024)

    // Refusals: a symlink planted in the export (pointing out of it), names that would leave the pool.
    symlinkSync('/etc/passwd', join(exportDir, 'evil'))
    await assert.rejects(pool.volume('evil').info(), /volume "evil" in pool "shared" is a symbolic link: refused/)
    await assert.rejects(pool.create('../x', { size: '1M' }), /volume name "\.\.\/x" in pool "shared" is not allowed/)
    assert.deepEqual(
      (await pool.list()).map(v => v.name),
      ['a.qcow2', 'b.qcow2'],
      'the symlink is no volume',
    )

    // A pool naming a host that serves no NFS (nothing listens on its port 111): a clear error naming it.
    const ghost = new Pool({ name: 'ghost', type: 'nfs', server: h1.address as string, export: '/nowhere' }, [h2])
    await assert.rejects(ghost.list(), new RegExp(`pool "ghost": .*${(h1.address as string).replace(/\./g, '\\.')}`))
    // One removed explicitly; the other is removed over NFS when the session ends.
    assert.equal(await b.remove(), true)
  } finally {
    await cluster.close()
  }
  assert.deepEqual(
    readdirSync(exportDir).filter(f => !f.startsWith('evil')),
    [],
    'the session reaper removed its volumes from the export',
  )
  assert.equal(existsSync(join(exportDir, 'evil')), true, 'what the session did not make stays')
})
