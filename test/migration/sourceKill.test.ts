// Agents die mid-migration with the controller's reconnect logic on (as the cluster fixture connects): the
// migration fails at once, without waiting out the 30 s lease, and the error names the host that died. The source
// agent's death must not be blamed on the destination (whose QEMU fails right after, when the stream breaks).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { AgentClient } from '../../src/cluster/client.ts'
import { Host } from '../../src/cluster/host.ts'
import { MigrationError } from '../../src/migration/errors.ts'
import { memtestSpec } from '../../src/migration/memtestVm.ts'
import { migrateVm } from '../../src/migration/vm.ts'
import { waitFor } from '../agent/helpers.ts'
import { requires } from '../helpers/requirements.ts'
import { type AgentProcess, spawnAgent, TestVm } from './helpers/agents.ts'

const MiB = 1024 * 1024

function qemusIn(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', `qemu-system-x86_64.*${dir}`], { encoding: 'utf8' })
      .trim()
      .split('\n')
  } catch {
    return []
  }
}

async function connect(url: string, name: string, token: string): Promise<Host> {
  return new Host(await AgentClient.connect({ url, token, name, leaseSeconds: 30 }), url)
}

for (const victim of ['a', 'b'] as const) {
  const role = victim === 'a' ? 'source' : 'destination'
  test(`the ${role} agent killed mid-migration: fails in seconds naming host ${victim}`, {
    timeout: 120_000,
  }, async t => {
    if (!requires(t, 'qemu')) return
    const token = `vt-migration-kill-${victim}-${process.pid}`
    const dirs = { a: await mkdtemp(join(tmpdir(), 'vt-mig-sa-')), b: await mkdtemp(join(tmpdir(), 'vt-mig-sb-')) }
    const agents: Record<string, AgentProcess> = {}
    const hosts: Host[] = []
    try {
      agents.a = await spawnAgent('a', token, dirs.a)
      agents.b = await spawnAgent('b', token, dirs.b)
      const [a, b] = [await connect(agents.a.url, 'a', token), await connect(agents.b.url, 'b', token)]
      hosts.push(a, b)
      const vm = await TestVm.create(a, await memtestSpec({ name: 'mt', memoryMiB: 128 }))
      await vm.waitForPasses(1)
      const run = migrateVm(vm, {
        to: b,
        hosts: [a, b],
        parameters: { 'downtime-limit': 1, 'max-bandwidth': 16 * MiB },
      })
      run.catch(() => {})
      await waitFor(
        async () => {
          const info = await a.service('vm').qmp('mt', 'query-migrate')
          return (info.ram?.transferred ?? 0) > MiB
        },
        30_000,
        'the migration to get going',
      )
      const killed = Date.now()
      agents[victim].proc.kill('SIGKILL')
      const err = await run.then(
        () => assert.fail('the migration succeeded'),
        e => e,
      )
      const ms = Date.now() - killed
      t.diagnostic(`migration failed ${ms} ms after the ${role} agent's kill -9: ${err.message}`)
      assert.ok(err instanceof MigrationError, String(err))
      const survivor = victim === 'a' ? 'b' : 'a'
      // Named: the dead host; not: a wait for the lease, or the survivor blamed.
      assert.match(
        err.message,
        new RegExp(
          `^migration a → b failed during migrate: the ${role} QEMU on ${victim} is gone: the link to host ${victim}'s agent is`,
        ),
      )
      assert.doesNotMatch(err.message, new RegExp(`QEMU on ${survivor} is gone`))
      assert.doesNotMatch(err.message, /within the 30 s lease/)
      if (victim === 'b') {
        assert.equal(err.sourceRunning, true)
        assert.equal(await vm.status(), 'running')
      } else {
        // The dead host's client failed for good at once; calls to it fail at once too.
        assert.equal(a.client.state, 'closed')
        await assert.rejects(a.service('vm').list(), /the agent is gone.*connection refused/)
      }
      // The survivor holds no destination QEMU; the dead agent's QEMU died with it (pdeathsig, keeper).
      await waitFor(() => qemusIn(dirs[victim]).length === 0, 10_000, `QEMU on ${victim} to be gone`)
      if (victim === 'a') assert.deepEqual(qemusIn(dirs.b), [], 'the destination QEMU was destroyed')
      if (victim === 'b') await vm.destroy()
    } finally {
      for (const h of hosts) await h.close().catch(() => {})
      for (const agent of Object.values(agents)) {
        agent.proc.kill('SIGTERM')
        await agent.exited
      }
      for (const d of Object.values(dirs)) {
        for (const pid of qemusIn(d)) process.kill(Number(pid), 'SIGKILL')
        await rm(d, { recursive: true, force: true })
      }
    }
  })
}
