// A destination started without -S (what the Vm driver does for shared storage) resumes the guest itself once
// it has loaded the last pass: the engine sends it no `cont`, so the guest's pause has no round trip through vt
// in it. And a failure that comes after that (here: the source's link fails the call that would have seen
// 'completed') must not roll back: the guest lives on the destination now, so the engine completes the move.
// Against it: the same failure with a destination started paused rolls back, the source keeps running.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MigrationError } from '../../src/migration/errors.ts'
import { runMigration } from '../../src/migration/migrate.ts'
import type { DestinationSide, MigrationDriver } from '../../src/migration/types.ts'
import { verifyMemoryIntegrityWith } from '../../src/migration/verify.ts'
import type { QmpExecutor } from '../../src/protocol/qmp.ts'
import { requires } from '../helpers/requirements.ts'
import { type LocalVm, localDriver, withLocalVm } from './helpers/localDriver.ts'
import type { LocalQemu } from './helpers/localQemu.ts'

const MiB = 1024 * 1024
const MEMORY = 128
const CONVERGE = { 'downtime-limit': 20_000, 'max-bandwidth': 4096 * MiB }

async function withVm(fn: (vm: LocalVm, dests: LocalQemu[]) => Promise<void>): Promise<void> {
  let qemus: () => LocalQemu[] = () => []
  await withLocalVm(MEMORY, 2, (vm, dests) => {
    qemus = () => [vm.qemu, ...dests]
    return fn(vm, dests)
  })
  for (const q of qemus()) assert.notEqual(q.proc.exitCode ?? q.proc.signalCode, null, 'QEMU left behind')
}

/** The local driver, with every QMP command sent to a destination recorded. */
function driverFor(vm: LocalVm, dests: LocalQemu[], autostart: boolean, sent: string[]): MigrationDriver<string> {
  const driver = localDriver(vm, { memoryMiB: MEMORY, hosts: ['a', 'b'], autostart, onDestination: q => dests.push(q) })
  const start = driver.startDestination.bind(driver)
  driver.startDestination = async (to, options) => {
    const d = await start(to, options)
    const execute = d.execute.bind(d) as (c: string, a?: unknown) => Promise<unknown>
    return {
      ...d,
      execute: ((command: string, args?: unknown) => {
        sent.push(command)
        return execute(command, args)
      }) as QmpExecutor['execute'],
    } satisfies DestinationSide
  }
  return driver
}

/** Fails the first source query-migrate that would report 'completed', as a link lost at that moment would. */
function failAtCompletion(driver: MigrationDriver<string>): void {
  const src = driver.source
  const execute = src.execute.bind(src) as (c: string, a?: unknown) => Promise<{ status?: string }>
  let failed = false
  src.execute = (async (command: string, args?: unknown) => {
    const r = await execute(command, args)
    if (command === 'query-migrate' && r.status === 'completed' && !failed) {
      failed = true
      throw new Error('the link to the source failed (injected)')
    }
    return r
  }) as QmpExecutor['execute']
}

async function expectIntactOn(q: LocalQemu): Promise<void> {
  assert.equal((await q.qmp.execute('query-status')).status, 'running')
  await q.waitForPasses(2)
  const report = await verifyMemoryIntegrityWith(q.access(), q.range)
  assert.equal(report.pages, (q.range.end - q.range.start) / 4096)
}

test('migration: a destination started without -S resumes the guest itself; vt sends it no cont', {
  timeout: 120_000,
}, async t => {
  if (!requires(t, 'qemu')) return
  await withVm(async (vm, dests) => {
    const from = vm.qemu
    const sent: string[] = []
    const result = await runMigration(driverFor(vm, dests, true, sent), { to: 'b', parameters: CONVERGE }, vm)
    assert.equal(result.status, 'completed')
    assert.equal(vm.host, 'b')
    assert.ok(sent.includes('migrate-incoming'), sent.join(' '))
    assert.ok(!sent.includes('cont'), `commands sent to the destination: ${sent.join(' ')}`)
    assert.notEqual(from.proc.exitCode ?? from.proc.signalCode, null, 'the source QEMU was shut down')
    await expectIntactOn(vm.qemu)
  })
})

test('migration: a failure after the destination resumed completes the move instead of rolling back', {
  timeout: 120_000,
}, async t => {
  if (!requires(t, 'qemu')) return
  await withVm(async (vm, dests) => {
    const from = vm.qemu
    const driver = driverFor(vm, dests, true, [])
    failAtCompletion(driver)
    const result = await runMigration(driver, { to: 'b', parameters: CONVERGE }, vm)
    assert.equal(result.status, 'completed')
    assert.equal(vm.host, 'b', 'the handle follows the guest to the destination')
    assert.notEqual(from.proc.exitCode ?? from.proc.signalCode, null, 'the stale source was shut down')
    await expectIntactOn(vm.qemu)
  })
})

test('migration: the same failure with a paused destination rolls back, the source keeps running', {
  timeout: 120_000,
}, async t => {
  if (!requires(t, 'qemu')) return
  await withVm(async (vm, dests) => {
    const driver = driverFor(vm, dests, false, [])
    failAtCompletion(driver)
    const err = await runMigration(driver, { to: 'b', parameters: CONVERGE }, vm).catch(e => e)
    assert.ok(err instanceof MigrationError, String(err))
    assert.match(err.message, /injected/)
    assert.equal(err.sourceRunning, true)
    assert.equal(vm.host, 'a')
    assert.equal(dests.length, 1)
    assert.notEqual(dests[0].proc.exitCode ?? dests[0].proc.signalCode, null, 'the destination was destroyed')
    await expectIntactOn(vm.qemu)
  })
})
