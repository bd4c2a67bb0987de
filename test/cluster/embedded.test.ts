// The embedded cluster and the controller side against real agents: per-host network namespaces with
// distinct addresses, loopback without isolation, cleanup (also after a crashed run), reservations that
// never overbook across parallel controllers, remote host configs, and clear errors.
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { Cluster, type Reservation } from '../../src/cluster/cluster.ts'
import { startCluster } from '../../src/cluster/embedded.ts'
import { cleanLeftovers, readRunRecord } from '../../src/cluster/runs.ts'
import type { ClusterConfig, ClusterConnectionInfo } from '../../src/config/cluster.ts'
import { alive, startTestAgent, waitFor } from '../agent/helpers.ts'
import { requires } from '../helpers/requirements.ts'
import { agentPids, leftovers, namespaces, runIdOf, startHangingRun } from './helpers.ts'

const out = mkdtempSync(join(os.tmpdir(), 'vt-cluster-test-'))
after(() => rmSync(out, { recursive: true, force: true }))

const ctx = (name: string) => ({ project: { name, outputDir: join(out, name) } as never, config: {} as never })

function assertCleaned(info: ClusterConnectionInfo): void {
  assert.ok(runIdOf(info))
  assert.deepEqual(leftovers(info), [])
}

test('netns: each host in its own namespace with a distinct address on a private bridge; all removed at stop', async t => {
  if (!requires(t, 'netns')) return
  const started = await startCluster({ hosts: 3 }, ctx('netns'))
  const { info } = started
  try {
    const addresses = info.hosts.map(h => h.address)
    assert.equal(new Set(addresses).size, 3)
    for (const a of addresses) assert.match(a as string, /^10\.213\.\d+\.\d+$/)
    const cluster = await Cluster.connect(info)
    try {
      for (const h of cluster.hosts) {
        const own = await h.succeed("ip -4 -o addr show dev eth0 | awk '{print $4}'")
        assert.equal(own.trim().split('/')[0], h.address, `${h.name} sees its own address`)
        // The namespace has only lo and eth0: nothing of the root namespace.
        const links = await h.succeed("ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1")
        assert.deepEqual(links.trim().split('\n').sort(), ['eth0', 'lo'])
      }
      // host1 reaches host2's agent port across the bridge.
      const [h1, h2] = cluster.hosts
      await h1.succeed(['bash', '-c', `exec 3<>/dev/tcp/${h2.address}/7070`])
      // The shared pool is visible to every host.
      await h1.files.put(join(info.sharedPool as string, 'from-h1'), 'shared')
      assert.equal(await h2.files.read(join(info.sharedPool as string, 'from-h1')), 'shared')
    } finally {
      await cluster.close()
    }
    // Agent logs are saved per host in the project's output dir.
    assert.deepEqual(readdirSync(join(out, 'netns', '.agents')).sort(), [
      'host1.log',
      'host2.log',
      'host3.log',
      'watcher.log',
    ])
  } finally {
    await started.stop()
  }
  assertCleaned(info)
})

for (const isolation of ['netns', 'none'] as const) {
  test(`${isolation}: a killed run's agents, namespaces, veth, temp dir and record go without waiting for a next run`, async t => {
    if (!requires(t, 'netns')) return
    const { info, child } = await startHangingRun({ VT_OUT: join(out, `crash-${isolation}`), VT_ISOLATION: isolation })
    const record = readRunRecord(runIdOf(info))
    assert.ok(record?.watcher, 'the run has a watcher')
    const killed = Date.now()
    child.kill('SIGKILL')
    // The agents see their stdin close, reap their sessions and exit; the watcher then removes the rest. Next to CPU-heavy
    // tests (TCG migrations) this took more than 20 s once, so the bound is generous; it is not a timing assert.
    await waitFor(() => leftovers(info).length === 0, 60_000, `leftovers gone: ${leftovers(info).join(', ')}`)
    t.diagnostic(`cleaned ${Date.now() - killed} ms after kill -9`)
    // The watcher removes the record last, then exits: wait for that exit rather than race it.
    const watcher = record.watcher
    await waitFor(() => !alive(watcher.pid), 5_000, 'the watcher exited')
  })
}

test('a crashed run whose watcher died too is cleaned at the next start, and only that run', async t => {
  if (!requires(t, 'netns')) return
  const live = await startCluster({ hosts: 1, isolation: 'netns' }, ctx('live'))
  try {
    const { info, child } = await startHangingRun({ VT_OUT: join(out, 'crash2'), VT_ISOLATION: 'netns' })
    const record = readRunRecord(runIdOf(info))
    assert.ok(record?.watcher)
    process.kill(record.watcher.pid, 'SIGKILL')
    child.kill('SIGKILL')
    await waitFor(() => agentPids(runIdOf(info)).length === 0, 10_000, 'agents of the crashed run to exit')
    assert.equal(namespaces().filter(n => n.includes(runIdOf(info))).length, 3)
    // Other crashed runs on the machine (another test file's deliberate crash running at the same time) may be
    // reaped too; what matters is that this one is, and that the live run is not.
    const reaped = await cleanLeftovers()
    assert.ok(reaped.includes(runIdOf(info)), `reaped ${reaped.join(', ')}`)
    assert.ok(!reaped.includes(runIdOf(live.info)), 'the live run is not reaped')
    assertCleaned(info)
    assert.equal(namespaces().filter(n => n.includes(runIdOf(live.info))).length, 2, 'the live run keeps its own')
  } finally {
    await live.stop()
  }
  assertCleaned(live.info)
})

test('isolation none: agents share loopback on distinct ports', async () => {
  const started = await startCluster(
    { hosts: 2, isolation: 'none', labels: [{ role: 'server' }, { role: 'client' }] },
    ctx('loopback'),
  )
  try {
    const urls = started.info.hosts.map(h => new URL(h.url))
    assert.ok(urls.every(u => u.hostname === '127.0.0.1'))
    assert.notEqual(urls[0].port, urls[1].port)
    const cluster = await Cluster.connect(started.info)
    try {
      assert.equal(cluster.host('host2').labels.role, 'client')
      const r = await cluster.select({ labels: { role: 'server' } })
      assert.equal(r.host.name, 'host1')
      await assert.rejects(
        cluster.select({ labels: { role: 'db' } }),
        /no host matches.*host1: label role=server, wanted db/,
      )
      assert.throws(() => cluster.host('nope'), /no host named "nope" in this cluster \(hosts: host1, host2\)/)
      await assert.rejects(cluster.select({ accel: 'warp' }), /no warp/)
    } finally {
      await cluster.close()
    }
  } finally {
    await started.stop()
  }
  assert.equal(existsSync(started.info.sharedPool as string), false)
})

test('reservations: parallel controllers never overbook a host; released at close', async () => {
  const started = await startCluster({ hosts: 2, isolation: 'none' }, ctx('reserve'))
  try {
    const [a, b] = await Promise.all([Cluster.connect(started.info), Cluster.connect(started.info)])
    const total = (await a.hosts[0].service('session').capacity()).total.memoryBytes // its share of the machine
    const slot = Math.floor(total * 0.4) // two fit on a host, a third does not
    const attempts = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).select({ minMemory: slot })),
    )
    const won = attempts.flatMap(s => (s.status === 'fulfilled' ? [s.value as Reservation] : []))
    const lost = attempts.flatMap(s => (s.status === 'rejected' ? [s.reason as Error] : []))
    assert.equal(won.length, 4)
    assert.equal(lost.length, 2)
    for (const e of lost) assert.match(e.message, /no host has room/)
    for (const name of ['host1', 'host2']) assert.equal(won.filter(r => r.host.name === name).length, 2)
    const cap = await a.hosts[0].client.service('session').capacity()
    assert.equal(cap.reserved.memoryBytes, 2 * slot)
    await a.close()
    // a's bookings are gone; b's remain until b closes.
    const after = await b.hosts[0].client.service('session').capacity()
    assert.equal(after.reservations.length, won.filter(r => r.host.name === 'host1' && b.reservations.has(r)).length)
    await b.close()
  } finally {
    await started.stop()
  }
})

test('remote hosts: tokens resolved and each agent checked before tests; a wrong token fails clearly', async () => {
  const agent = await startTestAgent()
  try {
    process.env.VT_TEST_REMOTE_TOKEN = agent.token
    const config: ClusterConfig = {
      hosts: [{ name: 'lab-a', url: agent.url, labels: { rack: '1' } }],
      token: { env: 'VT_TEST_REMOTE_TOKEN' },
    }
    const started = await startCluster(config, ctx('remote'))
    assert.equal(started.info.hosts[0].token, agent.token)
    const cluster = await Cluster.connect(started.info)
    assert.equal(cluster.host('testhost').labels.rack, '1')
    await cluster.close()
    await started.stop()
    await assert.rejects(
      startCluster({ ...config, token: { value: 'wrong-token-wrong-token' } }, ctx('remote')),
      /testhost: wrong token|lab-a: wrong token/,
    )
    await assert.rejects(
      startCluster({ ...config, token: { env: 'VT_UNSET_VAR_X' } }, ctx('remote')),
      /VT_UNSET_VAR_X.*empty or unset/,
    )
    await assert.rejects(
      startCluster({ hosts: [{ name: 'far', url: 'ws://192.0.2.1:7070' }], token: { value: 'x' } }, ctx('remote')),
      /not loopback; use wss:\/\//,
    )
    // Loopback is an address, not a spelling: these names start with "127." and may resolve anywhere.
    for (const url of ['ws://127.0.0.1.example.invalid:7070', 'ws://127.example.invalid:7070']) {
      await assert.rejects(
        startCluster({ hosts: [{ name: 'far', url }], token: { value: 'x' } }, ctx('remote')),
        /not loopback; use wss:\/\//,
      )
    }
  } finally {
    delete process.env.VT_TEST_REMOTE_TOKEN
    await agent.dispose()
  }
  assert.equal(alive(agent.pid), false)
})
