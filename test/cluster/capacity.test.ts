// Honest capacity with real agents: embedded hosts offer shares of the machine that add up to at most the
// machine (or what the config gives each), bookings that do not fit fail naming what is free where or wait for
// a release, and more than a host offers at all fails at once.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import fc from 'fast-check'
import { Cluster } from '../../src/cluster/cluster.ts'
import { startCluster } from '../../src/cluster/embedded.ts'
import { machineCapacity, splitCapacity } from '../../src/util/capacity.ts'
import { seeded } from '../helpers/property.ts'

const out = mkdtempSync(join(os.tmpdir(), 'vt-capacity-test-'))
after(() => rmSync(out, { recursive: true, force: true }))
const ctx = (name: string) => ({ project: { name, outputDir: join(out, name) } as never, config: {} as never })
const MiB = 1024 ** 2

test('splitCapacity: shares never add up to more than the machine; explicit values are kept', t => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 16 }),
      fc.integer({ min: 1024, max: 1024 * 1024 }),
      fc.integer({ min: 1, max: 1024 }),
      fc.array(fc.option(fc.integer({ min: 64, max: 4096 }), { nil: undefined }), { maxLength: 16 }),
      (count, memoryMiB, cpus, given) => {
        const machine = { memoryBytes: memoryMiB * MiB, cpus: Math.max(cpus, count) }
        const explicit = given.slice(0, count).map(m => (m === undefined ? undefined : { memoryBytes: m * MiB }))
        const hosts = splitCapacity(machine, count, explicit)
        assert.equal(hosts.length, count)
        for (const [i, e] of explicit.entries()) if (e) assert.equal(hosts[i].memoryBytes, e.memoryBytes)
        const sum = (k: 'memoryBytes' | 'cpus') => hosts.reduce((s, h) => s + h[k], 0)
        const fixed = explicit.reduce((s, e) => s + (e?.memoryBytes ?? 0), 0)
        // Defaults share what explicit values leave: the sum passes the machine only when those already do.
        if (fixed + MiB * count <= machine.memoryBytes) assert.ok(sum('memoryBytes') <= machine.memoryBytes)
        assert.ok(sum('cpus') <= machine.cpus)
      },
    ),
    seeded(t, { numRuns: 300 }),
  )
})

test('embedded hosts offer shares of the machine that add up to at most the machine', async () => {
  const started = await startCluster({ hosts: 3, isolation: 'none' }, ctx('share'))
  try {
    const cluster = await Cluster.connect(started.info)
    try {
      const totals = await Promise.all(cluster.hosts.map(async h => (await h.service('session').capacity()).total))
      const machine = machineCapacity()
      assert.ok(totals.reduce((s, c) => s + c.memoryBytes, 0) <= os.totalmem())
      assert.ok(totals.reduce((s, c) => s + c.cpus, 0) <= machine.cpus)
      // An equal share each, within a MiB of a third of the machine.
      for (const c of totals) assert.ok(Math.abs(c.memoryBytes - os.totalmem() / 3) <= MiB, `${c.memoryBytes}`)
    } finally {
      await cluster.close()
    }
  } finally {
    await started.stop()
  }
})

test('capacity from the config: per host; a booking that does not fit names what is free, waits, or fails at once', async () => {
  const started = await startCluster(
    { hosts: 2, isolation: 'none', capacity: [{ memory: '1G', cpus: 2 }, { cpus: 3 }] },
    ctx('config'),
  )
  try {
    const cluster = await Cluster.connect(started.info)
    try {
      const [a, b] = cluster.hosts
      const capA = await a.service('session').capacity()
      const capB = await b.service('session').capacity()
      assert.deepEqual(capA.total, { memoryBytes: 1024 * MiB, cpus: 2 })
      assert.equal(capB.total.cpus, 3)
      // host2 has no memory value: it gets what the machine has left.
      assert.ok(Math.abs(capB.total.memoryBytes - (os.totalmem() - 1024 * MiB)) <= MiB)

      const big = await cluster.select({ minMemory: '768M', cpus: 1, exclude: [b] })
      assert.equal(big.host.name, 'host1')
      await assert.rejects(cluster.select({ minMemory: '512M', exclude: [b] }), (e: Error) => {
        assert.match(
          e.message,
          /no host has room for 512 MiB and 0 cpus: host host1 has 256 MiB free of 1 GiB and 1 of 2 cpus \(0 VMs; 1 reservation\)/,
        )
        return true
      })
      // More than host1 offers at all: at once, even with a timeout.
      const t0 = Date.now()
      await assert.rejects(cluster.select({ minMemory: '2G', exclude: [b], timeout: 60_000 }), /no host has room/)
      assert.ok(Date.now() - t0 < 30_000, 'did not wait for what can never fit')
      const direct = a.service('session').reserve({ memoryBytes: 4 * 1024 * MiB })
      await assert.rejects(direct, /offers only 1 GiB and 2 cpus in all/)

      // A waiting booking gets the capacity once it is released.
      let got = false
      const waiting = cluster.select({ minMemory: '512M', exclude: [b], timeout: 120_000 }).then(r => {
        got = true
        return r
      })
      await new Promise(r => setTimeout(r, 600))
      assert.equal(got, false, 'booked while the capacity was held')
      await big.release()
      const r = await waiting
      assert.equal(r.host.name, 'host1')
      // The agent's own wait (session.reserve with a timeout) is woken by the release too.
      const queued = a.service('session').reserve({ memoryBytes: 768 * MiB, timeoutMs: 120_000 })
      await r.release()
      const q = await queued
      assert.equal(q.memoryBytes, 768 * MiB)
      assert.equal((await a.service('session').capacity()).reserved.memoryBytes, 768 * MiB)
    } finally {
      await cluster.close()
    }
  } finally {
    await started.stop()
  }
})
