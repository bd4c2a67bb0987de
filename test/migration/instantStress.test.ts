// Migration stress from instant VMs, on two real agents with real QEMU: memtestSnapshot boots one memtest guest
// and saves it; runs start their guest as a clone of that snapshot (no boot), migrate it between the hosts and
// check its memory after every step. The proof holds for clones too: a snapshot whose saved RAM has one page
// corrupted gives a clone that fails the run's very first memory check, naming that page.
import assert from 'node:assert/strict'
import { closeSync, openSync, readdirSync, readSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { after, before, test } from 'node:test'
import fc from 'fast-check'
import type { Cluster } from '../../src/cluster/cluster.ts'
import { migrationCommands } from '../../src/migration/stress/commands.ts'
import { memtestSnapshot } from '../../src/migration/stress/instant.ts'
import type { StepRecord } from '../../src/migration/stress/model.ts'
import { runMigrationCommands, type StressFixtures } from '../../src/migration/stress/run.ts'
import { MemoryIntegrityError } from '../../src/migration/verify.ts'
import type { VmSpec } from '../../src/protocol/vm.ts'
import { Vm, VmSnapshot } from '../../src/vm/index.ts'
import { machine, requires } from '../helpers/requirements.ts'
import { qemuProcesses } from '../vm/helpers.ts'
import { startAgents, type TestCluster } from './helpers/agents.ts'

const MiB = 1024 * 1024
const tag = `it${process.pid}`
let agents: TestCluster | undefined
const live: Vm[] = []
/** How each VM the runs made started (a clone says restored from the snapshot). */
const starts: (string | undefined)[] = []
let fixtures: StressFixtures
let warm: VmSnapshot

before(async () => {
  if (!machine.qemu) return
  agents = await startAgents(['a', 'b'])
  const hosts = agents.hosts
  fixtures = {
    cluster: { hosts } as unknown as Cluster,
    createVm: async (spec = {}) => {
      const { host, ...rest } = spec
      const vm = await Vm.create(hosts.find(h => h === host) ?? hosts[0], rest as VmSpec)
      vm.clusterHosts = hosts
      live.push(vm)
      starts.push(vm.info.restored && `${vm.info.restored.from} ${vm.info.restored.name}`)
      return vm
    },
  }
  warm = await memtestSnapshot(fixtures, { name: `warm-${tag}` })
})

after(async () => {
  await Promise.all(live.map(vm => vm.destroy().catch(() => {})))
  await agents?.stop()
  const left = live.flatMap(vm => qemuProcesses(`vt-${vm.name},`))
  assert.deepEqual(left, [], 'no QEMU of this test is left')
})

test('stress runs start from a warm memtest snapshot: clones, not boots, migrate with their memory intact', {
  timeout: 120_000,
}, async t => {
  if (!requires(t, 'qemu')) return
  assert.equal(warm.host, agents?.hosts[0])
  // A fixed seed: run 1 migrates there and back (precopy), run 2 pauses, resumes and migrates in postcopy.
  const seed = 33
  const stories = fc.sample(fc.commands(migrationCommands(), { maxCommands: 3 }), { seed, numRuns: 2 })
  let migrated = 0
  for (const steps of stories) {
    const before = live.length
    await runMigrationCommands(steps, fixtures, {
      from: warm,
      onStep: (step: StepRecord) => {
        if (step.kind === 'migrate' && step.completed) migrated++
      },
    })
    assert.equal(live.length, before + 1, 'the run made one VM')
    assert.equal(starts[before], 'snapshot warm', 'a clone of the warm snapshot, not a boot')
    await live[before].destroy()
  }
  t.diagnostic(`seed ${seed}: ${stories.map(s => `[${[...s].join('; ')}]`).join(' ')}`)
  assert.ok(migrated >= 1, `seed ${seed} gave no completed migration: ${stories.map(s => [...s].join('; '))}`)
})

test("a clone of a snapshot with one page of its saved RAM corrupted fails the run's first memory check", {
  timeout: 60_000,
}, async t => {
  if (!requires(t, 'qemu')) return
  const host = warm.host
  const parent = live.find(vm => vm.name === warm.vm) as Vm
  const bad = new VmSnapshot(host, await host.service('vm').snapshot(parent.name, 'bad'))
  // The saved RAM on the host's disk (the agents run on this machine): <session>/snapshots/<instance>/bad.N/ram,
  // the guest's RAM at its physical addresses (a snapshot's RAM is moved out of its stream into this file).
  const session = dirname(dirname(parent.info.dir))
  const ram = readdirSync(join(session, 'snapshots'), { recursive: true, encoding: 'utf8' })
    .filter(p => /(^|\/)bad\.\d+\/ram$/.test(p))
    .map(p => join(session, 'snapshots', p))
  assert.equal(ram.length, 1, `one saved RAM file of snapshot bad: ${ram}`)
  // A page of the memtest range is its counter (byte 0), zeros, then its own address (bytes 4..7): add 3 to
  // the counter of one page.
  const address = 0x0123f000
  const page = (address - MiB) / 4096
  const fd = openSync(ram[0], 'r+')
  try {
    const head = Buffer.alloc(8)
    readSync(fd, head, 0, 8, address)
    assert.equal(head.readUInt32LE(4), address, `page 0x${address.toString(16)} holds its own address in the saved RAM`)
    head[0] = (head[0] + 3) & 0xff
    writeSync(fd, head, 0, 1, address)
  } finally {
    closeSync(fd)
  }

  const err = await runMigrationCommands([], fixtures, { from: bad }).catch(e => e)
  assert.ok(err instanceof MemoryIntegrityError, String(err))
  assert.equal(err.report.bad?.what, 'counter')
  assert.equal(err.report.bad?.page, page, err.message)
  assert.equal(err.report.bad?.address, address)
})
