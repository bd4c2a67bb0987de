// Volumes in a dir pool against a real agent and real qemu-img: create, clone, snapshot and restore, convert,
// backup and restore from it, check, list, capacity and remove; data is checked with qemu-io patterns. Then the
// refusals: names with '..' or '/', a symlink out of the pool, a pool outside the roots, a pool that does not
// exist. Nothing is left behind.
import assert from 'node:assert/strict'
import { existsSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Cluster } from '../../src/cluster/cluster.ts'
import { VtRemoteError } from '../../src/protocol/errors.ts'
import { assertNoLeak } from '../agent/helpers.ts'
import { requires } from '../helpers/requirements.ts'
import { hasPattern, type StorageRig, storageRig, writePattern } from './helpers.ts'

let rig: StorageRig

before(async () => {
  rig = await storageRig()
})

after(async () => {
  await rig.client.close()
  await rig.agent.dispose()
  assertNoLeak(rig.agent)
})

test('create, clone, snapshot, restore, convert, backup, check, list, remove: a round trip', async t => {
  if (!requires(t, 'qemu')) return
  const { pool } = rig
  const base = await pool.create('base', { size: '64M', format: 'qcow2' })
  const baseInfo = await base.info()
  assert.equal(baseInfo.format, 'qcow2')
  assert.equal(baseInfo.virtualSize, 64 * 1024 * 1024)
  const dir = join(rig.agent.root, 'pools', 'local')
  assert.equal(baseInfo.filename, join(dir, 'base'))
  writePattern(baseInfo.filename, 0xa1, '0', '1M')

  const disk = await base.clone('disk-1')
  const diskInfo = await disk.info()
  assert.equal(diskInfo.backing, baseInfo.filename)
  assert.ok(hasPattern(diskInfo.filename, 0xa1, '0', '1M'), 'the clone reads its base')

  await disk.snapshot('clean')
  writePattern(diskInfo.filename, 0xb2, '0', '1M')
  assert.deepEqual(
    (await disk.snapshots()).map(s => s.name),
    ['clean'],
  )
  await disk.restore('clean')
  assert.ok(hasPattern(diskInfo.filename, 0xa1, '0', '1M'), 'restored to the snapshot')
  await assert.rejects(disk.restore('nope'), /has no snapshot "nope" \(it has clean\)/)

  writePattern(diskInfo.filename, 0xc3, '1M', '1M')
  const flat = await disk.convert('flat.raw', { format: 'raw' })
  const flatInfo = await flat.info()
  assert.equal(flatInfo.format, 'raw')
  assert.equal(flatInfo.backing, undefined)
  assert.ok(hasPattern(flatInfo.filename, 0xa1, '0', '1M', 'raw'))
  assert.ok(hasPattern(flatInfo.filename, 0xc3, '1M', '1M', 'raw'))

  const progress: number[] = []
  const bak = await disk.backup(pool, 'disk-1.bak', { onProgress: p => progress.push(p.done) })
  assert.equal(progress.at(-1), 64 * 1024 * 1024, 'progress ends at the whole size')
  assert.equal((await bak.info()).backing, undefined, 'a backup stands alone')
  writePattern(diskInfo.filename, 0xd4, '0', '2M')
  await disk.restoreFrom(bak)
  assert.ok(hasPattern(diskInfo.filename, 0xc3, '1M', '1M'), 'restored from the backup')
  assert.ok(hasPattern(diskInfo.filename, 0xa1, '0', '1M'), 'restored from the backup')

  assert.deepEqual(await disk.check(), { ok: true, corruptions: 0, leaks: 0, checkErrors: 0 })
  const names = (await pool.list()).map(v => v.name)
  assert.deepEqual(names, ['base', 'disk-1', 'disk-1.bak', 'flat.raw'])
  const cap = await pool.capacity()
  assert.equal(cap.volumes, 4)
  assert.ok(cap.usedBytes > 0 && cap.totalBytes >= cap.freeBytes && cap.freeBytes > 0, JSON.stringify(cap))

  await assert.rejects(pool.create('base', { size: '1M' }), /volume "base" in pool "local" already exists/)
  for (const v of [disk, bak, flat, base]) assert.equal(await v.remove(), true)
  assert.equal(await base.remove(), false)
  assert.deepEqual(readdirSync(dir), [])
})

test("names with '..' or '/', a symlink out of the pool, a pool outside the roots or not declared: clear errors", async t => {
  if (!requires(t, 'qemu')) return
  const { pool, host } = rig
  for (const name of ['..', '../escape', '/etc/passwd', 'a/b', '.hidden']) {
    await assert.rejects(pool.create(name, { size: '1M' }), (e: unknown) => {
      assert.ok(e instanceof VtRemoteError, String(e))
      assert.equal(e.code, 'BAD_VOLUME_NAME')
      assert.match(e.message, /in pool "local" is not allowed: a volume is a plain name inside its pool/)
      return true
    })
  }
  const dir = join(rig.agent.root, 'pools', 'local')
  const secret = join(rig.agent.dir, 'secret')
  writeFileSync(secret, 'x'.repeat(4096))
  symlinkSync(secret, join(dir, 'evil'))
  for (const op of [
    () => pool.volume('evil').info(),
    () => pool.volume('evil').clone('c'),
    () => pool.volume('evil').remove(),
  ]) {
    await assert.rejects(op(), (e: unknown) => {
      assert.ok(e instanceof VtRemoteError, String(e))
      assert.equal(e.code, 'VOLUME_SYMLINK')
      assert.match(e.message, /volume "evil" in pool "local" is a symbolic link \(to .*secret\): refused/)
      return true
    })
  }
  assert.ok(existsSync(secret), 'the link target is untouched')
  await host.files.remove(join(dir, 'evil'))

  const outside = new (pool.constructor as typeof import('../../src/storage/pool.ts').Pool)(
    { name: 'out', type: 'dir', path: rig.agent.dir },
    [host],
  )
  await assert.rejects(outside.create('x', { size: '1M' }), /outside the agent's allowed roots/)

  const cluster = new Cluster([host], undefined, {}, { local: rig.def })
  assert.throws(
    () => cluster.pool('fast'),
    /no storage pool named "fast" in this cluster \(pools: local\): declare it in vt\.config\.ts/,
  )
  await assert.rejects(
    pool.volume('missing').info(),
    /volume "missing" in pool "local" does not exist \(the pool has no volumes\)/,
  )
})
