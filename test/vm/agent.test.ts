// The vm service through a real agent process and the controller's Vm handle; then the agent is killed while
// its VM runs: QEMU must go with it, and the next agent start reaps the session's leftovers.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { AgentClient } from '../../src/cluster/client.ts'
import { Host } from '../../src/cluster/host.ts'
import { waitForAgentReady } from '../../src/cluster/localAgent.ts'
import type { VtRemoteError } from '../../src/protocol/errors.ts'
import { Vm, VmCommandError } from '../../src/vm/index.ts'
import { requires } from '../helpers/requirements.ts'
import { qemuProcesses, tempDir, waitFor } from './helpers.ts'

const root = tempDir('vt-vm-agent-test-')
const stateDir = join(root, 'state')
const token = 'test-token-vm-0123456789'
const agents = new Set<ChildProcess>()

async function startAgent(): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(
    process.execPath,
    [
      'bin/vt.js',
      'agent',
      '--listen',
      '127.0.0.1:0',
      '--token-env',
      'VT_TEST_TOKEN',
      '--state-dir',
      stateDir,
      '--name',
      'h1',
      '--quiet',
    ],
    {
      env: { ...process.env, VT_TEST_TOKEN: token },
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: join(import.meta.dirname, '../..'),
    },
  )
  agents.add(proc)
  proc.once('exit', (code, sig) => {
    agents.delete(proc)
    if (process.env.VT_DEBUG) console.error('agent exit', code, sig, readFileSync(join(stateDir, 'agent.log'), 'utf8'))
  })
  const { url } = await waitForAgentReady(proc)
  return { proc, url }
}

after(() => {
  for (const a of agents) a.kill('SIGKILL')
  rmSync(root, { recursive: true, force: true })
})

test('a VM through the agent: exec, succeed/fail, console, QMP, then the agent dies and the VM with it', async t => {
  if (!requires(t, 'qemu')) return
  const { proc, url } = await startAgent()
  const client = await AgentClient.connect({ url, token, name: 'h1', leaseSeconds: 5 })
  const host = new Host(client, url)
  const vm = await Vm.create(host, { name: 'a', accel: 'tcg', memory: '256M' })
  assert.equal(vm.host, host)
  assert.equal(vm.info.host, 'h1')
  assert.equal(vm.status, 'running')

  assert.equal(await vm.succeed('echo hello; uname -s'), 'hello\nLinux\n')
  assert.match(await vm.fail('ls /nonexistent'), /No such file/)
  const err = await vm.succeed('echo partial; echo bad >&2; exit 3').catch(e => e)
  assert.ok(err instanceof VmCommandError)
  assert.match(
    err.message,
    /^VM a on host h1: `echo partial; echo bad >&2; exit 3` failed with exit code 3\nstdout:\npartial\nstderr:\nbad$/,
  )
  await assert.rejects(vm.fail('true'), /`true` was expected to fail but exited 0/)

  // Binary megabytes through the wire.
  const big = await vm.exec('head -c 1048576 /dev/urandom > /tmp/b; md5sum < /tmp/b >&2; cat /tmp/b')
  assert.equal(big.stdoutBytes.length, 1048576)
  assert.equal(createHash('md5').update(big.stdoutBytes).digest('hex'), big.stderr.split(' ')[0])

  // waitUntilSucceeds polls until a background job has done its work.
  await vm.exec('(sleep 1; touch /tmp/flag) > /dev/null 2>&1 &')
  await assert.rejects(
    vm.waitUntilSucceeds('test -e /tmp/nothing', { timeout: 600 }),
    /did not succeed within 600 ms; last exit code 1/,
  )
  assert.equal(await vm.waitUntilSucceeds('test -e /tmp/flag && echo there', { timeout: 10_000 }), 'there\n')

  // Console: the boot line was captured (even from before the handle existed); output written now streams in.
  assert.match(vm.console.text() + (await vm.console.fetch()), /vt-tiny: ready/)
  await vm.exec('echo console-marker-42 > /dev/console')
  const m = await vm.console.waitFor(/console-marker-(\d+)/, { timeout: 15_000 })
  assert.equal(m[1], '42')
  await assert.rejects(
    vm.console.waitFor('never-printed', { timeout: 300 }),
    /console did not show .*never-printed.* within 300 ms/,
  )

  // QMP pass-through, typed; errors carry QEMU's class and description as data.
  assert.equal((await vm.qmp('query-status')).status, 'running')
  const notFound = await vm.qmp('no-such-command').then(
    () => assert.fail('should reject'),
    (e: VtRemoteError) => e,
  )
  assert.equal(notFound.name, 'CommandNotFoundError')
  assert.match(notFound.message, /^h1: vm\.qmp: QMP no-such-command failed: CommandNotFound: /)
  assert.equal(notFound.code, 'QMP_COMMAND')
  assert.equal(notFound.qmp?.class, 'CommandNotFound')
  assert.equal(notFound.qmp?.command, 'no-such-command')
  assert.match(notFound.qmp?.desc ?? '', /no-such-command/)
  await vm.pause()
  assert.equal((await vm.refresh()).status, 'paused')
  await vm.resume()
  assert.match(await vm.transcript(), /-> stop/)

  // The agent dies hard while the VM runs: QEMU follows it at once (parent-death signal).
  const qemuPid = vm.info.pid
  assert.deepEqual(qemuProcesses(stateDir), [qemuPid])
  proc.kill('SIGKILL')
  assert.ok(await waitFor(() => qemuProcesses(stateDir).length === 0, 10_000), 'qemu survived its agent')
  client.close().catch(() => {})

  // The dead agent's keeper reaps its session's records and files without waiting for a restart.
  assert.ok(
    await waitFor(() => readdirSync(join(stateDir, 'sessions')).filter(f => f.endsWith('.json')).length === 0, 10_000),
    'session records were not reaped',
  )
  const again = await startAgent()
  assert.equal(existsSync(vm.info.dir), false, `${vm.info.dir} survived the reap`)
  again.proc.kill('SIGTERM')
  await new Promise(r => again.proc.once('exit', r))
  assert.deepEqual(qemuProcesses(root), [])
})
