// Guest networks on a real embedded cluster (namespaces, bridges, VXLAN), without VMs: the segment spans the
// hosts (attached hosts reach each other over it), two controllers never share a segment, MACs are unique,
// address exhaustion and unknown names are clear errors, a controller killed with -9 has its networks reaped.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Cluster } from '../../src/cluster/cluster.ts'
import { type StartedCluster, startCluster } from '../../src/cluster/embedded.ts'
import type { Host } from '../../src/cluster/host.ts'
import { MacRegistry } from '../../src/cluster/network.ts'
import { waitFor } from '../agent/helpers.ts'
import { machine, requires } from '../helpers/requirements.ts'

const out = mkdtempSync(join(os.tmpdir(), 'vt-network-test-'))
let started: StartedCluster | undefined

before(async () => {
  if (machine.netns)
    started = await startCluster(
      { hosts: 2, isolation: 'netns', networks: { lan: { subnet: '10.79.0.0/24' } } },
      { project: { name: 'network', outputDir: out } as never, config: {} as never },
    )
})
after(async () => {
  await started?.stop()
  rmSync(out, { recursive: true, force: true })
})

const pings = async (from: Host, ip: string) =>
  (await from.exec(['busybox', 'ping', '-c', '1', '-W', '2', ip], { timeout: 10_000 })).exitCode === 0
const links = async (h: Host) => (await h.succeed(['ip', '-br', 'link'])).trim()

test('one segment over both hosts: attached hosts reach each other through the VXLAN; MTU leaves room for it', async t => {
  if (!requires(t, 'netns') || !started) return
  const cluster = await Cluster.connect(started.info)
  try {
    const [a, b] = cluster.hosts
    const lan = cluster.network('lan')
    const ta = await lan.attach(a, { ip: '10.79.0.1/24' })
    const tb = await lan.attach(b)
    assert.equal(tb.ip, '10.79.0.2/24')
    assert.notEqual(ta.mac, tb.mac)
    assert.equal(lan.mtu, 1450)
    assert.equal(await pings(a, '10.79.0.2'), true)
    assert.match(await links(a), new RegExp(`${lan.bridge} .*UP`))
    // A guest-network partition between the two attached hosts, healed.
    const cut = await lan.partition([a], [b])
    assert.equal(await pings(a, '10.79.0.2'), false)
    await cut.heal()
    assert.equal(await pings(a, '10.79.0.2'), true)
  } finally {
    await cluster.close()
  }
  // Closing the session removed the bridge and VXLAN device on every host.
  const check = await Cluster.connect(started.info)
  try {
    for (const h of check.hosts) assert.doesNotMatch(await links(h), /vtb|vtx/)
  } finally {
    await check.close()
  }
})

test('two controllers (two runs) with the same network and subnet never share a segment', async t => {
  if (!requires(t, 'netns') || !started) return
  const x = await Cluster.connect(started.info)
  const y = await Cluster.connect(started.info)
  try {
    const lx = x.network('lan')
    const ly = y.network('lan')
    await lx.attach(x.hosts[0], { ip: '10.79.0.1/24' })
    await ly.attach(y.hosts[1], { ip: '10.79.0.2/24' })
    assert.notEqual(lx.vni, ly.vni)
    assert.equal(await pings(x.hosts[0], '10.79.0.2'), false)
    // The same VNI twice on a host is refused, never shared.
    const clash = await x.createNetwork('again', { subnet: '10.80.0.0/24', vni: ly.vni }).catch(e => e)
    assert.match(String(clash?.message), new RegExp(`network VNI ${ly.vni} already exists on this host`))
  } finally {
    await x.close()
    await y.close()
  }
})

test('addresses: exhaustion, a taken address, one outside the subnet, an unknown network: clear errors', async t => {
  if (!requires(t, 'netns') || !started) return
  const cluster = await Cluster.connect(started.info)
  try {
    const tiny = await cluster.createNetwork('tiny', { subnet: '10.81.0.0/30' })
    const first = await tiny.nicFor('vm-a', { network: 'tiny' })
    const second = await tiny.nicFor('vm-b', { network: 'tiny' })
    assert.deepEqual([first.ip, second.ip].sort(), ['10.81.0.1/30', '10.81.0.2/30'])
    await assert.rejects(
      tiny.nicFor('vm-c', { network: 'tiny' }),
      /network tiny: no free address left in 10\.81\.0\.0\/30 \(2 in use\) for vm-c/,
    )
    tiny.release('vm-a')
    assert.equal((await tiny.nicFor('vm-c', { network: 'tiny' })).ip, first.ip)
    await assert.rejects(
      tiny.nicFor('vm-d', { network: 'tiny', ip: second.ip }),
      /10\.81\.0\.\d is already used by vm-b/,
    )
    await assert.rejects(
      tiny.nicFor('vm-d', { network: 'tiny', ip: '10.9.9.9' }),
      /not a host address of 10\.81\.0\.0\/30/,
    )
    await assert.rejects(
      tiny.nicFor('vm-d', { network: 'tiny', mac: first.mac === undefined ? 'x' : (second.mac as string) }),
      /MAC .* is already used by vm-b in this cluster/,
    )
    assert.throws(() => cluster.network('wan'), /no network named "wan" in this cluster \(networks: lan, tiny\)/)
    await assert.rejects(cluster.createNetwork('bad', { subnet: '10.0.0.0' }), /subnet must be like '10\.77\.0\.0\/24'/)
  } finally {
    await cluster.close()
  }
})

test('MACs: unique across many VMs of a cluster; a given duplicate is refused', () => {
  const macs = new MacRegistry()
  const seen = new Set<string>()
  for (let i = 0; i < 5000; i++) seen.add(macs.take(`vm${i}`))
  assert.equal(seen.size, 5000)
  for (const m of seen) assert.match(m, /^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/)
  assert.throws(() => macs.take('other', [...seen][0]), /already used by vm0/)
  assert.equal(macs.take('mine', '52:54:00:AA:BB:CC'), '52:54:00:aa:bb:cc')
})

test('a controller killed with -9: its network (bridge, VXLAN, attached address) is reaped when the lease expires', async t => {
  if (!requires(t, 'netns') || !started) return
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', resolve(fileURLToPath(import.meta.url), '../scripts/fault-controller.ts')],
    {
      env: { ...process.env, VT_INFO: JSON.stringify(started.info), VT_WHAT: 'network' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const { bridge } = await new Promise<{ bridge: string }>((res, rej) => {
    child.once('exit', c => rej(new Error(`controller exited ${c}`)))
    child.stdout?.once('data', d => res(JSON.parse(String(d).split('\n')[0])))
  })
  child.removeAllListeners('exit')
  const cluster = await Cluster.connect(started.info)
  try {
    const [a, b] = cluster.hosts
    assert.match(await links(a), new RegExp(bridge))
    assert.match(await links(b), new RegExp(bridge))
    child.kill('SIGKILL')
    for (const h of [a, b])
      await waitFor(async () => !(await links(h)).includes(bridge), 10_000, `${bridge} reaped on ${h.name}`)
  } finally {
    child.kill('SIGKILL')
    await cluster.close()
  }
})
