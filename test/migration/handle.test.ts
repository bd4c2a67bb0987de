// vm.migrate() on the real Vm handle (src/vm/): the tiny Linux guest keeps running a workload across a live
// migration, and afterwards exec, the console and QMP all reach it on the destination.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { Vm } from '../../src/vm/index.ts'
import { requires } from '../helpers/requirements.ts'
import { startAgents } from './helpers/agents.ts'

test('vm.migrate(): a busy tiny guest moves a → b, exec/console/QMP follow it', { timeout: 240_000 }, async t => {
  if (!requires(t, 'qemu')) return
  const cluster = await startAgents(['a', 'b'])
  const [a, b] = cluster.hosts
  try {
    const vm = await Vm.create(a, { name: 'busy', image: 'tiny', memory: '256M' })
    await vm.succeed(
      'echo started > /tmp/marker; (while :; do date +%s%N >> /tmp/ticks; sleep 0.1; done) >/dev/null 2>&1 &',
    )
    const ticksBefore = Number((await vm.succeed('wc -l < /tmp/ticks')).trim())
    const progress: number[] = []
    const result = await vm.migrate({
      to: b,
      hosts: cluster.hosts,
      parameters: { 'max-bandwidth': 4096 * 1024 * 1024 },
      onProgress: p => progress.push(p.transferredBytes),
      during: async v => {
        // The workload is observable through exec while the migration runs.
        assert.equal((await v.succeed('cat /tmp/marker')).trim(), 'started')
      },
      after: async v => {
        assert.equal(v.host, b)
      },
    })
    assert.equal(result.status, 'completed')
    assert.equal(vm.host, b)
    assert.ok(result.downtimeMs >= 0 && result.downtimeMs < 5000, `downtime ${result.downtimeMs}`)
    assert.ok(progress.length > 0)
    // exec reaches the guest on b, which kept its files and its background loop.
    assert.equal((await vm.succeed('cat /tmp/marker')).trim(), 'started')
    await vm.waitUntilSucceeds(`test $(wc -l < /tmp/ticks) -gt ${ticksBefore + 5}`, { timeout: 30_000 })
    // The console is now b's: typing into it reaches the same guest.
    await vm.console.write('echo console-after-migration\n')
    await vm.console.waitFor('console-after-migration', { timeout: 10_000 })
    // QMP is b's QEMU.
    assert.equal((await vm.qmp('query-status')).status, 'running')
    // Shared storage: b's QEMU was started without -S, so it resumed the guest itself once loaded (no `cont`
    // round trip through vt in the guest's pause; test/migration/autostart.test.ts).
    const argv = readFileSync(`/proc/${vm.info.pid}/cmdline`, 'utf8').split('\0')
    assert.ok(argv.includes('-incoming') && !argv.includes('-S'), argv.join(' '))
    assert.equal((await a.service('vm').list()).length, 0, 'nothing left on a')
    await vm.destroy()
  } finally {
    await cluster.stop()
  }
})
