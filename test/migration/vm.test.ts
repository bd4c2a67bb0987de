// vm-level migration through real agents (the `vm` and `migration` services): a memtest VM migrates between
// two agents and back, memory intact each time; storage copy; several at once; bad input refused with the
// source running.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { test } from 'node:test'
import { MigrationError } from '../../src/migration/errors.ts'
import { memtestSpec, verifyMemoryIntegrity } from '../../src/migration/memtestVm.ts'
import { migrateAll, pingPong } from '../../src/migration/pingPong.ts'
import { migrateVm } from '../../src/migration/vm.ts'
import { requires } from '../helpers/requirements.ts'
import { startAgents, TestVm } from './helpers/agents.ts'

const MiB = 1024 * 1024
const CONVERGE = { 'downtime-limit': 20_000, 'max-bandwidth': 4096 * MiB }

function qemusOf(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', `qemu-system-x86_64.*${dir}`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
  } catch {
    return []
  }
}

test('vm: memtest VM migrates a → b → a through the agents, memory intact each hop', { timeout: 180_000 }, async t => {
  if (!requires(t, 'qemu')) return
  const cluster = await startAgents(['a', 'b'])
  const [a, b] = cluster.hosts
  try {
    const vm = await TestVm.create(a, await memtestSpec({ name: 'mt', memoryMiB: 128 }))
    await vm.waitForPasses(3)
    const before = await verifyMemoryIntegrity(vm)
    const result = await migrateVm(vm, { to: b, hosts: cluster.hosts, parameters: CONVERGE })
    assert.equal(result.status, 'completed')
    assert.equal(result.from, 'a')
    assert.equal(result.to, 'b')
    assert.equal(vm.host, b)
    assert.equal(await vm.status(), 'running')
    assert.equal((await a.service('vm').list()).length, 0, 'the source VM is gone from a')
    await vm.waitForPasses(3)
    assert.match(await vm.console(), /^B+$/, 'the destination continued the guest, it did not boot it')
    const after = await verifyMemoryIntegrity(vm)
    assert.ok(after.passes > before.passes)
    // Ping-pong from b visits every other host and comes back to b.
    const back = await pingPong(vm, cluster.hosts, { parameters: CONVERGE })
    assert.deepEqual(
      back.map(r => `${r.from}→${r.to}`),
      ['b→a', 'a→b'],
    )
    assert.equal(vm.host, b)
    await vm.waitForPasses(2)
    assert.ok((await verifyMemoryIntegrity(vm)).passes > after.passes)
    await vm.destroy()
  } finally {
    await cluster.stop()
  }
  for (const agent of cluster.agents) assert.deepEqual(qemusOf(agent.stateDir), [], 'no QEMU left')
})

test('vm: bad destinations and an unknown capability leave the source running', { timeout: 120_000 }, async t => {
  if (!requires(t, 'qemu')) return
  const cluster = await startAgents(['a', 'b', 'c'])
  const [a, b, c] = cluster.hosts
  try {
    const vm = await TestVm.create(a, await memtestSpec({ name: 'mt', memoryMiB: 64 }))
    await vm.waitForPasses(2)
    const same = await migrateVm(vm, { to: a, hosts: cluster.hosts }).catch(e => e)
    assert.ok(same instanceof MigrationError)
    assert.equal(same.phase, 'precheck')
    assert.match(same.message, /the destination a is the host mt already runs on/)
    const unknown = await migrateVm(vm, { to: c, hosts: [a, b] }).catch(e => e)
    assert.match(unknown.message, /unknown host c/)
    await c.close()
    const gone = await migrateVm(vm, { to: c, hosts: cluster.hosts }).catch(e => e)
    assert.match(gone.message, /host c is not connected/)
    const cap = await migrateVm(vm, { to: b, hosts: cluster.hosts, capabilities: { 'warp-drive': true } }).catch(e => e)
    assert.ok(cap instanceof MigrationError)
    assert.equal(cap.phase, 'configure')
    assert.match(cap.qemuError ?? '', /warp-drive/)
    // QEMU's class came through the agent as data, not out of the message.
    assert.equal(cap.code, 'MIGRATION_FAILED')
    assert.equal(cap.qmp?.class, 'GenericError')
    assert.equal(cap.qmp?.command, 'migrate-set-capabilities')
    assert.equal(cap.sourceRunning, true)
    assert.deepEqual(await b.service('vm').list(), [], 'the destination VM was destroyed')
    assert.equal(vm.host, a)
    assert.equal(await vm.status(), 'running')
    await vm.waitForPasses(2)
    await verifyMemoryIntegrity(vm)
    // The migration service reads only memtest dumps inside the agent's own dirs.
    const svc = a.service('migration')
    await assert.rejects(svc.checkMemoryDump({ path: '/etc/passwd', start: 0, size: 4096 }), /vt-memdump-\*\.bin/)
    const outside = `/tmp/vt-memdump-outside-${process.pid}.bin`
    writeFileSync(outside, Buffer.alloc(4096))
    try {
      await assert.rejects(
        svc.checkMemoryDump({ path: outside, start: 0, size: 4096 }),
        /outside the agent's state dir and allowed roots/,
      )
    } finally {
      rmSync(outside, { force: true })
    }
    await assert.rejects(svc.checkMemoryDump({ path: `${vm.info.dir}/vt-memdump-x.bin`, start: 1, size: 4096 }), /4096/)
    await vm.destroy()
  } finally {
    await cluster.stop()
  }
})

test('vm: storage copy mirrors a host-local disk; two VMs migrate at once', { timeout: 180_000 }, async t => {
  if (!requires(t, 'qemu')) return
  const cluster = await startAgents(['a', 'b'])
  const [a, b] = cluster.hosts
  try {
    const withDisk = await TestVm.create(
      a,
      await memtestSpec({ name: 'disky', memoryMiB: 64, extraDisks: [{ size: '8M', format: 'raw', id: 'data' }] }),
    )
    // Mark the host-local disk so the copy can be checked on the other side.
    const dataFile = withDisk.info.disks.find(d => d.id === 'data')?.file as string
    execFileSync('sh', [
      '-c',
      `printf 'vt-storage-copy-marker' | dd of=${dataFile} bs=1 seek=4096 conv=notrunc status=none`,
    ])
    const plain = await TestVm.create(a, await memtestSpec({ name: 'plain', memoryMiB: 64 }))
    await withDisk.waitForPasses(2)
    await plain.waitForPasses(2)
    const shared = await migrateVm(withDisk, { to: b, hosts: cluster.hosts }).catch(e => e)
    assert.match(shared.message, /disk data of disky is host-local .*storage: 'copy'/)
    const [r1, r2] = await migrateAll([
      { vm: withDisk, options: { to: b, hosts: cluster.hosts, storage: 'copy', parameters: CONVERGE } },
      { vm: plain, options: { to: b, hosts: cluster.hosts, parameters: CONVERGE } },
    ])
    assert.equal(r1.storage, 'copy')
    assert.equal(r1.storageBytes, 8 * MiB)
    assert.equal(r2.storage, 'shared')
    assert.equal(withDisk.host, b)
    assert.equal(plain.host, b)
    const copied = withDisk.info.disks.find(d => d.id === 'data')?.file as string
    assert.notEqual(copied, dataFile)
    assert.match(
      execFileSync('dd', [`if=${copied}`, 'bs=4096', 'skip=1', 'count=1', 'status=none'], { encoding: 'latin1' }),
      /^vt-storage-copy-marker/,
    )
    for (const vm of [withDisk, plain]) {
      await vm.waitForPasses(2)
      await verifyMemoryIntegrity(vm)
      await vm.destroy()
    }
  } finally {
    await cluster.stop()
  }
})
