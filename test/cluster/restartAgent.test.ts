// cluster.faults.restartAgent on a real embedded cluster (namespaces): the agent is SIGKILLed and started again
// with the same identity; what its sessions held dies with it and is reaped (QEMU, the partition's nft table,
// the network's bridge), the controller gets a new session there with its networks made again, a migration to
// the restarted host works, and a cluster whose agents nobody here started gets a clear error.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Cluster } from '../../src/cluster/cluster.ts'
import { type StartedCluster, startCluster } from '../../src/cluster/embedded.ts'
import { memtestSpec, verifyMemoryIntegrity } from '../../src/migration/memtestVm.ts'
import { migrateVm } from '../../src/migration/vm.ts'
import { alive, waitFor } from '../agent/helpers.ts'
import { machine, requires } from '../helpers/requirements.ts'
import { TestVm } from '../migration/helpers/agents.ts'
import { leftovers } from './helpers.ts'

const out = mkdtempSync(join(os.tmpdir(), 'vt-restart-test-'))
let started: StartedCluster | undefined

before(async () => {
  if (machine.netns && machine.nft && machine.qemu)
    started = await startCluster(
      { hosts: 2, isolation: 'netns', networks: { lan: { subnet: '10.79.0.0/24' } } },
      { project: { name: 'restart', outputDir: out } as never, config: {} as never },
    )
})
after(async () => {
  const info = started?.info
  await started?.stop()
  if (info) assert.deepEqual(leftovers(info), [], 'the run left nothing behind')
  rmSync(out, { recursive: true, force: true })
})

test('restartAgent: the agent comes back, what it held is reaped, the host works again', {
  timeout: 180_000,
}, async t => {
  if (!requires(t, 'netns', 'nft', 'qemu') || !started) return
  const restartAgent = started.restartAgent
  assert.ok(restartAgent)
  const cluster = await Cluster.connect(started.info, { restartAgent })
  try {
    const [a, b] = cluster.hosts
    const lan = cluster.network('lan')
    await lan.ready()
    const doomed = await TestVm.create(b, await memtestSpec({ name: 'doomed', memoryMiB: 64 }))
    const qemu = doomed.info.pid
    assert.ok(qemu && alive(qemu))
    const cut = await cluster.faults.partition(a, b)
    const session = b.client.session.id

    const restarted = await cluster.faults.restartAgent(b)
    assert.equal(restarted.healed, true)
    assert.equal(b.client.state, 'connected')
    assert.notEqual(b.client.session.id, session, 'a new session with the new agent')
    await waitFor(async () => !alive(qemu), 10_000, 'the QEMU of the old agent is gone')
    assert.deepEqual(await b.service('vm').list(), [], 'the new session has no VMs')
    // The keeper healed b's half of the partition; a's half is healed by heal().
    assert.equal((await b.succeed(['nft', 'list', 'ruleset'])).trim(), '')
    await cut.heal()
    assert.equal((await a.succeed(['nft', 'list', 'ruleset'])).trim(), '')
    // The network is there again on b (a new bridge in the new session).
    await b.succeed(['ip', 'link', 'show', lan.bridge])

    // The restarted host takes a migration.
    const vm = await TestVm.create(a, await memtestSpec({ name: 'survivor', memoryMiB: 64 }))
    await vm.waitForPasses(2)
    const r = await migrateVm(vm, {
      to: b,
      hosts: cluster.hosts,
      parameters: { 'downtime-limit': 20_000, 'max-bandwidth': 4096 * 1024 * 1024 },
      report: false,
    })
    assert.equal(r.status, 'completed')
    assert.equal(vm.host, b)
    await verifyMemoryIntegrity(vm)
    await vm.destroy()
  } finally {
    await cluster.close()
  }
})

test('restartAgent without anyone who started the agents is a clear error', { timeout: 60_000 }, async t => {
  if (!requires(t, 'netns', 'nft', 'qemu') || !started) return
  const cluster = await Cluster.connect(started.info)
  try {
    await assert.rejects(cluster.faults.restartAgent(cluster.hosts[0]), /nothing here can restart that agent/)
    assert.equal(cluster.hosts[0].client.state, 'connected')
  } finally {
    await cluster.close()
  }
})
