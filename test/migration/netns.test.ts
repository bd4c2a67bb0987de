// Migration between two network namespaces joined by a veth pair, as two hosts would be: it works across the
// link, and a link cut mid-migration (nftables drops everything on the destination side) ends in a timeout
// that leaves the source running with its memory intact and nothing behind.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { test } from 'node:test'
import { MigrationError } from '../../src/migration/errors.ts'
import { runMigration } from '../../src/migration/migrate.ts'
import { verifyMemoryIntegrityWith } from '../../src/migration/verify.ts'
import { requires } from '../helpers/requirements.ts'
import { type LocalVm, localDriver } from './helpers/localDriver.ts'
import { type LocalQemu, sharedMemtestDisk, startLocalMemtest } from './helpers/localQemu.ts'

const MiB = 1024 * 1024
const MEMORY = 128
const tag = `${process.pid % 100000}`
const ns = { a: `vtmig-a-${tag}`, b: `vtmig-b-${tag}` }
const addr = { a: '10.199.77.1', b: '10.199.77.2' }

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

function setUpLink(): void {
  ip('netns', 'add', ns.a)
  ip('netns', 'add', ns.b)
  ip('link', 'add', `vtma${tag}`, 'type', 'veth', 'peer', 'name', `vtmb${tag}`)
  ip('link', 'set', `vtma${tag}`, 'netns', ns.a)
  ip('link', 'set', `vtmb${tag}`, 'netns', ns.b)
  for (const side of ['a', 'b'] as const) {
    ip('-n', ns[side], 'addr', 'add', `${addr[side]}/24`, 'dev', `vtm${side}${tag}`)
    ip('-n', ns[side], 'link', 'set', `vtm${side}${tag}`, 'up')
    ip('-n', ns[side], 'link', 'set', 'lo', 'up')
  }
}

function tearDownLink(): void {
  for (const n of [ns.a, ns.b]) {
    try {
      ip('netns', 'del', n) // takes the veth pair with it
    } catch {}
  }
}

function cutLink(): void {
  execFileSync('ip', ['netns', 'exec', ns.b, 'nft', '-f', '-'], {
    input: 'table inet vtcut {\n  chain input {\n    type filter hook input priority 0; policy drop;\n  }\n}\n',
  })
}

async function withNamespacedVm(fn: (vm: LocalVm, dests: LocalQemu[]) => Promise<void>): Promise<void> {
  setUpLink()
  const pool = await sharedMemtestDisk(MEMORY)
  const dests: LocalQemu[] = []
  let vm: LocalVm | undefined
  try {
    vm = { host: 'a', qemu: await startLocalMemtest({ name: 'a', memoryMiB: MEMORY, disk: pool.path, netns: ns.a }) }
    await vm.qemu.waitForPasses(3)
    await fn(vm, dests)
  } finally {
    await vm?.qemu.kill()
    for (const d of dests) await d.kill()
    await pool.remove()
    tearDownLink()
  }
  const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
  assert.ok(!left.includes(`vtmig-`), `namespaces left: ${left}`)
}

function driver(vm: LocalVm, dests: LocalQemu[]) {
  return localDriver(vm, {
    memoryMiB: MEMORY,
    hosts: ['a', 'b'],
    netns: { a: { name: ns.a, address: addr.a }, b: { name: ns.b, address: addr.b } },
    onDestination: q => dests.push(q),
  })
}

test('netns: precopy across a veth link between two namespaces', { timeout: 120_000 }, async t => {
  if (!requires(t, 'qemu', 'root', 'netns')) return
  await withNamespacedVm(async (vm, dests) => {
    const from = vm.qemu
    const result = await runMigration(
      driver(vm, dests),
      { to: 'b', parameters: { 'downtime-limit': 20_000, 'max-bandwidth': 4096 * MiB } },
      vm,
    )
    assert.equal(result.status, 'completed')
    assert.equal(vm.host, 'b')
    assert.notEqual(vm.qemu, from)
    await vm.qemu.waitForPasses(2)
    await verifyMemoryIntegrityWith(vm.qemu.access(), vm.qemu.range)
  })
})

test('netns: a link cut mid-migration times out, the source keeps running intact', { timeout: 120_000 }, async t => {
  if (!requires(t, 'qemu', 'root', 'netns', 'nft')) return
  await withNamespacedVm(async (vm, dests) => {
    const from = vm.qemu
    // Slow and never converging, so the cut surely lands mid-stream.
    const run = runMigration(
      driver(vm, dests),
      { to: 'b', timeout: 4000, parameters: { 'downtime-limit': 1, 'max-bandwidth': 16 * MiB } },
      vm,
    )
    const t0 = Date.now()
    for (;;) {
      const info = await from.qmp.execute('query-migrate')
      if (info.status === 'active' && (info.ram?.transferred ?? 0) > 2 * MiB) break
      if (Date.now() - t0 > 20_000) throw new Error(`migration did not get going: ${JSON.stringify(info)}`)
      await new Promise(r => setTimeout(r, 20))
    }
    cutLink()
    const cutAt = (await from.qmp.execute('query-migrate')).ram?.transferred ?? 0
    const err = await run.catch(e => e)
    assert.ok(err instanceof MigrationError, String(err))
    assert.equal(err.phase, 'migrate')
    assert.match(err.message, /within the timeout of 4000 ms/)
    assert.ok((err.lastStats?.transferredBytes ?? 0) >= cutAt - 4 * MiB)
    assert.equal(err.sourceRunning, true)
    assert.equal(vm.host, 'a')
    assert.equal(vm.qemu, from)
    assert.equal((await from.qmp.execute('query-status')).status, 'running')
    await from.waitForPasses(2)
    await verifyMemoryIntegrityWith(from.access(), from.range)
    for (const d of dests) assert.notEqual(d.proc.exitCode ?? d.proc.signalCode, null, 'destination destroyed')
  })
})
