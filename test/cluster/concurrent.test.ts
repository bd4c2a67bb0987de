// Two embedded runs started at the same moment, right after a crashed run (controller and watcher killed) left
// its namespaces behind: both must get their own namespaces (never a silent fall back to loopback), both must
// work, and the crashed run's leftovers must go. Repeated, since the race this guards against was timing.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { Cluster } from '../../src/cluster/cluster.ts'
import { startCluster } from '../../src/cluster/embedded.ts'
import { readRunRecord } from '../../src/cluster/runs.ts'
import { waitFor } from '../agent/helpers.ts'
import { requires } from '../helpers/requirements.ts'
import { agentPids, leftovers, namespaces, runIdOf, startHangingRun } from './helpers.ts'

const out = mkdtempSync(join(os.tmpdir(), 'vt-concurrent-test-'))
after(() => rmSync(out, { recursive: true, force: true }))

const ROUNDS = 3

test(`concurrent runs after a crash: both in their own namespaces, the crashed run cleaned (${ROUNDS} rounds)`, async t => {
  if (!requires(t, 'netns')) return
  for (let round = 1; round <= ROUNDS; round++) {
    const crashed = await startHangingRun({ VT_OUT: join(out, `crash${round}`), VT_ISOLATION: 'netns' })
    const rec = readRunRecord(runIdOf(crashed.info))
    assert.ok(rec?.watcher)
    process.kill(rec.watcher.pid, 'SIGKILL') // nobody cleans up after it but the next runs
    crashed.child.kill('SIGKILL')
    await waitFor(() => agentPids(runIdOf(crashed.info)).length === 0, 10_000, 'crashed agents to exit')
    assert.equal(namespaces().filter(n => n.includes(runIdOf(crashed.info))).length, 3)

    const ctx = (name: string) => ({ project: { name, outputDir: join(out, name) } as never, config: {} as never })
    // One with the default isolation, one asking for namespaces: neither may end up on loopback.
    const runs = await Promise.allSettled([
      startCluster({ hosts: 2 }, ctx(`a${round}`)),
      startCluster({ hosts: 2, isolation: 'netns' }, ctx(`b${round}`)),
    ])
    try {
      for (const r of runs) if (r.status === 'rejected') throw r.reason
      for (const r of runs) {
        const { info } = (r as PromiseFulfilledResult<Awaited<ReturnType<typeof startCluster>>>).value
        for (const h of info.hosts) assert.match(h.address as string, /^10\.213\.\d+\.\d+$/, `round ${round}: netns`)
        const cluster = await Cluster.connect(info)
        try {
          for (const h of cluster.hosts) assert.match(await h.succeed('ip -o -4 addr show dev eth0'), /10\.213\./)
        } finally {
          await cluster.close()
        }
      }
      assert.deepEqual(leftovers(crashed.info), [], `round ${round}: the crashed run is cleaned`)
    } finally {
      for (const r of runs) if (r.status === 'fulfilled') await r.value.stop()
    }
    for (const r of runs) if (r.status === 'fulfilled') assert.deepEqual(leftovers(r.value.info), [])
  }
})
