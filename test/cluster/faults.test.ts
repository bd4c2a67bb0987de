// cluster.faults on a real embedded cluster (namespaces, nftables, tc): a partition cuts the underlay both ways
// and heals, a slow link shapes with htb + tbf and heals, what the kernel lacks is a clear error, bad
// arguments are clear errors, and a controller killed with -9 has its faults healed by the agents' reaper.
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
import { waitFor } from '../agent/helpers.ts'
import { machine, requires } from '../helpers/requirements.ts'

const out = mkdtempSync(join(os.tmpdir(), 'vt-faults-test-'))
let started: StartedCluster | undefined

before(async () => {
  if (machine.netns && machine.nft)
    started = await startCluster(
      { hosts: 2, isolation: 'netns' },
      { project: { name: 'faults', outputDir: out } as never, config: {} as never },
    )
})
after(async () => {
  await started?.stop()
  rmSync(out, { recursive: true, force: true })
})

/** Whether `from` opens a TCP connection to `to`'s agent port within a second. */
async function reaches(from: Host, to: Host): Promise<boolean> {
  const r = await from.exec(['busybox', 'nc', '-w', '1', to.address, '7070'], { stdin: '', timeout: 5000 })
  return r.exitCode === 0
}

const rules = async (h: Host) => (await h.succeed(['nft', 'list', 'ruleset'])).trim()
const qdiscs = async (h: Host) => (await h.succeed(['tc', 'qdisc', 'show', 'dev', 'eth0'])).trim()

test('partition cuts the underlay both ways and heals; healAll heals what is left', async t => {
  if (!requires(t, 'netns', 'nft') || !started) return
  const cluster = await Cluster.connect(started.info)
  try {
    const [a, b] = cluster.hosts
    assert.equal(await reaches(a, b), true)
    const cut = await cluster.faults.partition([a], [b])
    assert.equal(await reaches(a, b), false)
    assert.equal(await reaches(b, a), false)
    assert.match(await rules(a), /ip daddr .*drop/)
    await cut.heal()
    await cut.heal() // idempotent
    assert.equal(await reaches(a, b), true)
    assert.equal(await rules(a), '')
    await cluster.faults.partition(b, a)
    assert.equal(cluster.faults.active.size, 1)
    await cluster.faults.healAll()
    assert.equal(cluster.faults.active.size, 0)
    assert.equal(await reaches(b, a), true)
    assert.equal(await rules(b), '')
  } finally {
    await cluster.close()
  }
})

test('slowLink shapes both directions with htb + tbf and heals; a bad rate is a clear error', async t => {
  if (!requires(t, 'netns', 'nft') || !started) return
  const cluster = await Cluster.connect(started.info)
  try {
    const [a, b] = cluster.hosts
    const slow = await cluster.faults.slowLink(a, b, { rate: '8mbit' })
    assert.match(await qdiscs(a), /tbf .*rate 8Mbit/)
    assert.match(await qdiscs(b), /tbf .*rate 8Mbit/)
    await slow.heal()
    assert.doesNotMatch(await qdiscs(a), /htb|tbf/)
    await assert.rejects(cluster.faults.slowLink(a, b, { rate: 'fast' }), /rate like "20mbit"/)
    await assert.rejects(cluster.faults.partition([a], [a]), /host1\] is in both groups/)
    assert.equal(cluster.faults.active.size, 0)
  } finally {
    await cluster.close()
  }
})

test('a controller killed with -9: the agents heal its partition and slow link when its lease expires', async t => {
  if (!requires(t, 'netns', 'nft') || !started) return
  const info = started.info
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', resolve(fileURLToPath(import.meta.url), '../scripts/fault-controller.ts')],
    { env: { ...process.env, VT_INFO: JSON.stringify(info), VT_WHAT: 'faults' }, stdio: ['ignore', 'pipe', 'inherit'] },
  )
  await new Promise<void>((res, rej) => {
    child.once('exit', c => rej(new Error(`controller exited ${c}`)))
    child.stdout?.once('data', () => res())
  })
  child.removeAllListeners('exit')
  const cluster = await Cluster.connect(info)
  try {
    const [a, b] = cluster.hosts
    assert.equal(await reaches(a, b), false)
    assert.match(await qdiscs(a), /tbf/)
    child.kill('SIGKILL')
    await waitFor(async () => (await rules(a)) === '' && (await rules(b)) === '', 10_000, 'partition healed')
    await waitFor(async () => !/tbf|htb/.test(await qdiscs(a)), 10_000, 'slow link healed')
    assert.equal(await reaches(a, b), true)
  } finally {
    child.kill('SIGKILL')
    await cluster.close()
  }
})
