// The destination's agent is SIGKILLed mid-migration: the migration fails as a lost destination, the source
// keeps running with its memory intact, and the destination QEMU the dead agent left behind is reaped when
// that agent starts again on the same state dir.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { Host } from '../../src/cluster/host.ts'
import { MigrationError } from '../../src/migration/errors.ts'
import { memtestSpec, verifyMemoryIntegrity } from '../../src/migration/memtestVm.ts'
import { migrateVm } from '../../src/migration/vm.ts'
import { requires } from '../helpers/requirements.ts'
import { type AgentProcess, connectHost, spawnAgent, TestVm } from './helpers/agents.ts'

const MiB = 1024 * 1024

function qemusIn(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', `qemu-system-x86_64.*${dir}`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
  } catch {
    return []
  }
}

test('the destination agent killed mid-migration: source keeps running, nothing left after the reap', {
  timeout: 120_000,
}, async t => {
  if (!requires(t, 'qemu')) return
  const token = `vt-migration-kill-test-${process.pid}`
  const dirs = { a: await mkdtemp(join(tmpdir(), 'vt-mig-ka-')), b: await mkdtemp(join(tmpdir(), 'vt-mig-kb-')) }
  let agentA: AgentProcess | undefined
  let agentB: AgentProcess | undefined
  let a: Host | undefined
  let b: Host | undefined
  try {
    agentA = await spawnAgent('a', token, dirs.a)
    agentB = await spawnAgent('b', token, dirs.b)
    a = await connectHost(agentA.url, 'a', token)
    b = await connectHost(agentB.url, 'b', token)
    const vm = await TestVm.create(a, await memtestSpec({ name: 'mt', memoryMiB: 128 }))
    await vm.waitForPasses(2)
    // Slow and never converging, so the kill surely lands mid-stream.
    const run = migrateVm(vm, { to: b, hosts: [a, b], parameters: { 'downtime-limit': 1, 'max-bandwidth': 16 * MiB } })
    const t0 = Date.now()
    for (;;) {
      const info = await a.service('vm').qmp('mt', 'query-migrate')
      if (info.status === 'active' && (info.ram?.transferred ?? 0) > MiB) break
      if (Date.now() - t0 > 30_000) throw new Error(`migration did not get going: ${JSON.stringify(info)}`)
      await new Promise(r => setTimeout(r, 20))
    }
    agentB.proc.kill('SIGKILL')
    const err = await run.catch(e => e)
    assert.ok(err instanceof MigrationError, String(err))
    assert.equal(err.phase, 'migrate')
    // Whichever is noticed first: the link to b's agent, or QEMU's stream to the (dying) destination QEMU.
    assert.match(
      err.message,
      /destination QEMU on b is gone: the link to host b's agent is|QEMU reports migration failed/,
    )
    if (/QEMU reports/.test(err.message)) assert.match(err.qemuError ?? '', /socket|Connection|Broken pipe/i)
    assert.equal(err.sourceRunning, true)
    assert.equal(vm.host, a)
    assert.equal(await vm.status(), 'running')
    const status = (await a.service('vm').qmp('mt', 'query-migrate')).status
    assert.ok(status === 'cancelled' || status === 'failed', `source migration status ${status}`)
    await vm.waitForPasses(2)
    await verifyMemoryIntegrity(vm)
    // The dead agent's QEMU may outlive it; its next start on the same state dir reaps it.
    agentB = await spawnAgent('b', token, dirs.b)
    const deadline = Date.now() + 10_000
    while (qemusIn(dirs.b).length > 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 100))
    assert.deepEqual(qemusIn(dirs.b), [], 'the destination QEMU was reaped')
    await vm.destroy()
  } finally {
    await a?.close().catch(() => {})
    await b?.close().catch(() => {})
    for (const agent of [agentA, agentB]) {
      if (!agent) continue
      agent.proc.kill('SIGTERM')
      await agent.exited
    }
    for (const d of Object.values(dirs)) {
      for (const pid of qemusIn(d)) process.kill(Number(pid), 'SIGKILL')
      await rm(d, { recursive: true, force: true })
    }
  }
  assert.deepEqual(qemusIn(dirs.a), [])
})
