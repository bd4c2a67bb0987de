// The migration engine (src/migration/migrate.ts) over raw local QEMU processes: every mode keeps the memtest
// guest's memory intact on the destination, and every fault leaves the source running, its memory intact and
// no QEMU behind. The same engine runs behind vm.migrate(); these tests need no agent.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { MigrationError } from '../../src/migration/errors.ts'
import { runMigration } from '../../src/migration/migrate.ts'
import type { MigrateOptions, MigrationProgress } from '../../src/migration/types.ts'
import { verifyMemoryIntegrityWith } from '../../src/migration/verify.ts'
import { requires } from '../helpers/requirements.ts'
import { type LocalVm, localDriver, withLocalVm } from './helpers/localDriver.ts'
import type { LocalQemu } from './helpers/localQemu.ts'

const MiB = 1024 * 1024
const MEMORY = 128
const HOSTS = ['a', 'b']
/** The guest redirties its whole range every few ms; let precopy finish with one long final pass. */
const CONVERGE = { 'downtime-limit': 20_000, 'max-bandwidth': 4096 * MiB }

function ourQemus(): string[] {
  try {
    return execFileSync('pgrep', ['-f', `qemu-system-x86_64.*vt-mig-${process.pid}-`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
  } catch {
    return []
  }
}

async function withVm(fn: (vm: LocalVm, dests: LocalQemu[]) => Promise<void>): Promise<void> {
  await withLocalVm(MEMORY, 3, fn)
  assert.deepEqual(ourQemus(), [], 'no QEMU process left behind')
}

function migrate(vm: LocalVm, dests: LocalQemu[], options: MigrateOptions<string, LocalVm>) {
  const driver = localDriver(vm, { memoryMiB: MEMORY, hosts: HOSTS, onDestination: q => dests.push(q) })
  return runMigration(driver, options, vm)
}

/** The guest's count of finished passes right now (a consistency check on the way). */
async function passes(q: LocalQemu): Promise<number> {
  return (await verifyMemoryIntegrityWith(q.access(), q.range)).passes
}

async function expectMigratedIntact(vm: LocalVm, from: LocalQemu, passesBefore: number): Promise<void> {
  assert.equal(vm.host, 'b')
  assert.notEqual(vm.qemu, from)
  assert.notEqual(from.proc.exitCode ?? from.proc.signalCode, null, 'the source QEMU was shut down')
  assert.equal((await vm.qemu.qmp.execute('query-status')).status, 'running')
  await vm.qemu.waitForPasses(3)
  const report = await verifyMemoryIntegrityWith(vm.qemu.access(), vm.qemu.range)
  assert.equal(report.pages, (vm.qemu.range.end - vm.qemu.range.start) / 4096)
  // The guest carried on rather than booting afresh: its pass count kept growing and the destination's serial
  // port never saw the firmware or the boot-time 'A'.
  assert.ok(report.passes > passesBefore, `passes ${report.passes} after migration, ${passesBefore} before`)
  assert.match(await vm.qemu.serial(), /^B+$/)
  // Ports released: the migrated QEMU listens on no TCP port (incoming stream, NBD export both closed).
  const listening = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' })
    .split('\n')
    .filter(l => l.includes(`pid=${vm.qemu.proc.pid},`))
  assert.deepEqual(listening, [], 'the destination QEMU still listens')
}

const modes: {
  name: string
  options: Omit<MigrateOptions<string, LocalVm>, 'to'>
  check?: (r: Awaited<ReturnType<typeof migrate>>) => void
}[] = [
  { name: 'precopy', options: { parameters: CONVERGE } },
  {
    name: 'multifd',
    options: { capabilities: { multifd: true }, parameters: { ...CONVERGE, 'multifd-channels': 2 } },
    check: r => assert.ok(r.capabilities.includes('multifd') && (r.raw.ram?.['multifd-bytes'] ?? 0) > 0),
  },
  {
    name: 'postcopy',
    // precopy must not converge by itself (1 ms downtime limit, 64 MiB/s), or QEMU completes before the switch
    options: { postcopy: true, parameters: { 'max-bandwidth': 64 * MiB, 'downtime-limit': 1 } },
    check: r => assert.ok(r.postcopy && r.capabilities.includes('postcopy-ram')),
  },
  {
    name: 'xbzrle',
    options: { capabilities: { xbzrle: true }, parameters: { ...CONVERGE, 'xbzrle-cache-size': 256 * MiB } },
    check: r => assert.ok(r.capabilities.includes('xbzrle')),
  },
  {
    name: 'auto-converge',
    options: {
      capabilities: { 'auto-converge': true },
      parameters: { 'downtime-limit': 2000, 'max-bandwidth': 4096 * MiB },
    },
    check: r => assert.ok(r.capabilities.includes('auto-converge')),
  },
  {
    name: 'copied storage',
    options: { storage: 'copy', parameters: CONVERGE },
    check: r => assert.ok(r.storage === 'copy' && r.storageBytes >= MiB),
  },
]

for (const mode of modes) {
  test(`engine: ${mode.name} keeps the memtest guest intact`, { timeout: 180_000 }, async t => {
    if (!requires(t, 'qemu')) return
    await withVm(async (vm, dests) => {
      const from = vm.qemu
      const before = await passes(from)
      const progress: MigrationProgress[] = []
      const result = await migrate(vm, dests, {
        to: 'b',
        ...mode.options,
        onProgress: p => progress.push(p),
        progressIntervalMs: 50,
      })
      assert.equal(result.status, 'completed')
      assert.equal(result.from, 'a')
      assert.equal(result.to, 'b')
      assert.ok(
        result.totalTimeMs > 0 && result.transferredBytes > 0 && result.dirtySyncCount >= 1,
        JSON.stringify(result.raw),
      )
      assert.ok(result.downtimeMs >= 0 && result.wallMs >= result.totalTimeMs)
      // The numbers are QEMU's own, not re-measured.
      assert.equal(result.downtimeMs, result.raw.downtime)
      assert.equal(result.totalTimeMs, result.raw['total-time'])
      assert.ok(progress.length > 0)
      // The time series the html report charts: QEMU's numbers at every poll, in time order, ending completed.
      const samples = result.samples
      assert.ok(samples.length >= 2, JSON.stringify(samples))
      assert.ok(
        samples.every((s, i) => i === 0 || s.t >= samples[i - 1].t),
        'samples in time order',
      )
      assert.equal(samples.at(-1)?.status, 'completed')
      assert.equal(samples.at(-1)?.remainingBytes, 0)
      assert.equal(samples.at(-1)?.transferredBytes, result.transferredBytes)
      assert.ok(
        samples.some(s => s.status === 'active' && s.remainingBytes > 0),
        JSON.stringify(samples),
      )
      mode.check?.(result)
      if (mode.options.storage === 'copy') {
        const copied = await readFile(vm.qemu.disk)
        assert.deepEqual(copied, await readFile(from.disk), 'the copied disk equals the source disk')
      }
      await expectMigratedIntact(vm, from, before)
    })
  })
}

async function expectSourceIntact(vm: LocalVm, err: unknown): Promise<MigrationError> {
  assert.ok(err instanceof MigrationError, `expected a MigrationError, got ${String(err)}`)
  assert.equal(vm.host, 'a', 'the handle still points at the source')
  assert.equal(err.sourceRunning, true)
  assert.equal((await vm.qemu.qmp.execute('query-status')).status, 'running')
  await vm.qemu.waitForPasses(2)
  await verifyMemoryIntegrityWith(vm.qemu.access(), vm.qemu.range)
  return err
}

test('engine faults: same host, unknown host, bad options', { timeout: 60_000 }, async t => {
  if (!requires(t, 'qemu')) return
  await withVm(async (vm, dests) => {
    const same = await expectSourceIntact(vm, await migrate(vm, dests, { to: 'a' }).catch(e => e))
    assert.equal(same.phase, 'precheck')
    assert.match(
      same.message,
      /migration a → a failed during precheck: the destination a is the host the VM already runs on/,
    )
    const unknown = await expectSourceIntact(vm, await migrate(vm, dests, { to: 'zz' }).catch(e => e))
    assert.match(unknown.message, /unknown host zz/)
    await assert.rejects(migrate(vm, dests, { to: 'b', timeout: -1 }), /timeout must be a positive number/)
    await assert.rejects(
      migrate(vm, dests, { to: 'b', storage: 'nfs' as 'copy' }),
      /storage must be 'shared' or 'copy'/,
    )
    assert.equal(dests.length, 0, 'no destination was started')
  })
})

test('engine faults: an unknown capability surfaces QEMU error, destination destroyed', {
  timeout: 60_000,
}, async t => {
  if (!requires(t, 'qemu')) return
  await withVm(async (vm, dests) => {
    const err = await expectSourceIntact(
      vm,
      await migrate(vm, dests, { to: 'b', capabilities: { 'warp-drive': true } }).catch(e => e),
    )
    assert.equal(err.phase, 'configure')
    assert.match(err.qemuError ?? '', /warp-drive/)
    assert.equal(dests.length, 1)
    assert.notEqual(dests[0].proc.exitCode ?? dests[0].proc.signalCode, null, 'destination QEMU is gone')
  })
})

test('engine faults: a far too short timeout cancels, the source keeps running', { timeout: 60_000 }, async t => {
  if (!requires(t, 'qemu')) return
  await withVm(async (vm, dests) => {
    // downtime-limit 1 ms never converges with this guest: only the timeout can end it.
    const err = await expectSourceIntact(
      vm,
      await migrate(vm, dests, { to: 'b', timeout: 1500, parameters: { 'downtime-limit': 1 } }).catch(e => e),
    )
    assert.equal(err.phase, 'migrate')
    assert.match(err.message, /within the timeout of 1500 ms/)
    assert.ok(err.lastStats && err.lastStats.transferredBytes > 0, 'last stats carried')
    for (const d of dests) assert.notEqual(d.proc.exitCode ?? d.proc.signalCode, null)
    assert.equal((await vm.qemu.qmp.execute('query-migrate')).status, 'cancelled')
  })
})

test('engine faults: the destination dies mid-migration', { timeout: 60_000 }, async t => {
  if (!requires(t, 'qemu')) return
  await withVm(async (vm, dests) => {
    const run = migrate(vm, dests, { to: 'b', parameters: { 'downtime-limit': 1, 'max-bandwidth': 32 * MiB } })
    const started = Date.now()
    while ((await vm.qemu.qmp.execute('query-migrate')).status !== 'active') {
      if (Date.now() - started > 20_000) throw new Error('migration never became active')
      await new Promise(r => setTimeout(r, 20))
    }
    dests[0].proc.kill('SIGKILL')
    const err = await expectSourceIntact(vm, await run.catch(e => e))
    assert.equal(err.phase, 'migrate')
    assert.match(err.message, /destination QEMU on b is gone|QEMU reports migration failed/)
  })
})

test('engine faults: a timeout while the destination starts still destroys it', { timeout: 60_000 }, async t => {
  if (!requires(t, 'qemu')) return
  await withVm(async (vm, dests) => {
    const err = await expectSourceIntact(vm, await migrate(vm, dests, { to: 'b', timeout: 30 }).catch(e => e))
    assert.equal(err.phase, 'start-destination')
    assert.equal(dests.length, 1, 'the destination did get started')
    assert.notEqual(dests[0].proc.exitCode ?? dests[0].proc.signalCode, null, 'and was destroyed')
  })
})

test('engine faults: an AbortSignal cancels a running migration', { timeout: 60_000 }, async t => {
  if (!requires(t, 'qemu')) return
  await withVm(async (vm, dests) => {
    const abort = new AbortController()
    const run = migrate(vm, dests, { to: 'b', signal: abort.signal, parameters: { 'downtime-limit': 1 } })
    while ((await vm.qemu.qmp.execute('query-migrate')).status !== 'active') await new Promise(r => setTimeout(r, 20))
    abort.abort('the test changed its mind')
    const err = await expectSourceIntact(vm, await run.catch(e => e))
    assert.match(err.message, /cancelled: the test changed its mind/)
    assert.equal((await vm.qemu.qmp.execute('query-migrate')).status, 'cancelled')
  })
})
