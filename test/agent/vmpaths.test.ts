// Host paths that reach QEMU besides the VM spec's checked fields, against real agents: raw extraArgs
// (-drive file=...), the incoming migration URI and QMP commands (pmemsave) are checked against the roots; a
// confined agent (--confined) refuses exec, spawn, raw QEMU arguments, exec: URIs and HMP outright.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { AgentClient } from '../../src/cluster/client.ts'
import { VtRemoteError } from '../../src/protocol/errors.ts'
import { requires } from '../helpers/requirements.ts'
import { qemuProcesses } from '../vm/helpers.ts'
import { assertNoLeak, startTestAgent, type TestAgent, waitFor } from './helpers.ts'

let open: TestAgent
let confined: TestAgent
let outside: string

before(async () => {
  ;[open, confined] = await Promise.all([startTestAgent(), startTestAgent({ extraArgs: ['--confined'] })])
  outside = join(open.dir, 'outside')
  mkdirSync(outside)
  writeFileSync(join(outside, 'host.img'), Buffer.alloc(1024 * 1024))
})

after(async () => {
  await Promise.all([open.dispose(), confined.dispose()])
  assertNoLeak(open)
  assertNoLeak(confined)
  assert.deepEqual(qemuProcesses(open.dir), [])
  assert.deepEqual(qemuProcesses(confined.dir), [])
})

function code(expected: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof VtRemoteError, String(e))
    assert.equal(e.code, expected, e.message)
    if (message) assert.match(e.message, message)
    return true
  }
}

async function withClient<T>(agent: TestAgent, fn: (c: AgentClient) => Promise<T>): Promise<T> {
  const c = await agent.connect()
  try {
    return await fn(c)
  } finally {
    await c.close()
  }
}

test('extraArgs naming a host file outside the roots are refused before QEMU starts', async () => {
  await withClient(open, async c => {
    const vm = c.service('vm')
    const img = join(outside, 'host.img')
    for (const extraArgs of [
      ['-drive', `file=${img},format=raw,if=virtio`],
      ['-blockdev', `driver=file,node-name=x,filename=${img}`],
      ['-blockdev', JSON.stringify({ driver: 'file', 'node-name': 'x', filename: img })],
      ['-hdb', img],
      // QEMU doubles commas inside option values.
      ['-drive', `file=json:{"driver":"file",,"filename":"${img}"}`],
      ['-chardev', `file,id=f,path=${join(outside, 'log')}`],
      ['-netdev', `tap,id=n,script=${join(outside, 'up.sh')}`],
    ]) {
      await assert.rejects(
        vm.create({ name: 'bypass', extraArgs }),
        code('OUTSIDE_ROOTS', /extraArgs .*outside the agent's allowed roots/),
        extraArgs.join(' '),
      )
    }
    await assert.rejects(
      vm.create({ name: 'bypass', incoming: `file:${join(outside, 'state')}` }),
      code('OUTSIDE_ROOTS', /incoming/),
    )
  })
  assert.deepEqual(qemuProcesses(open.dir), [])
})

test('QMP pmemsave outside the roots is refused; inside a root it works', async t => {
  if (!requires(t, 'qemu')) return
  await withClient(open, async c => {
    const vm = c.service('vm')
    // Paused at the first instruction: QEMU runs, no guest boot needed for pmemsave.
    await vm.create({ name: 'pm', paused: true, memory: '128M' })
    await assert.rejects(
      vm.qmp('pm', 'pmemsave', { val: 0, size: 4096, filename: join(outside, 'dump') }),
      code('OUTSIDE_ROOTS', /QMP pmemsave/),
    )
    await assert.rejects(
      vm.qmp('pm', 'dump-guest-memory', { paging: false, protocol: `file:${join(outside, 'core')}` }),
      code('OUTSIDE_ROOTS'),
    )
    assert.equal(existsSync(join(outside, 'dump')), false)
    const inside = join(open.root, 'dump')
    await vm.qmp('pm', 'pmemsave', { val: 0, size: 4096, filename: inside })
    await waitFor(() => existsSync(inside), 5000, 'pmemsave inside the root')
    await vm.destroy('pm')
  })
})

test('a confined agent refuses exec, spawn, raw QEMU arguments and exec: URIs, and says so in its facts', async () => {
  await withClient(confined, async c => {
    assert.equal(c.facts.agent.confined, true)
    await assert.rejects(c.service('exec').run({ argv: ['true'] }), code('CONFINED', /this agent is confined/))
    await assert.rejects(c.service('spawn').start({ argv: ['sleep', '1'] }), code('CONFINED'))
    const vm = c.service('vm')
    await assert.rejects(vm.create({ name: 'raw', extraArgs: ['-nographic'] }), code('CONFINED', /extraArgs/))
    await assert.rejects(
      vm.create({ name: 'mig', incoming: `exec:touch ${join(confined.root, 'pwned')}` }),
      code('CONFINED', /exec:/),
    )
    assert.equal(existsSync(join(confined.root, 'pwned')), false)
    // Files still work, within the roots.
    await c.service('files').write(join(confined.root, 'ok'), 'fine')
  })
  await withClient(open, async c => assert.equal(c.facts.agent.confined, undefined))
})

test('a confined agent refuses HMP and exec: migration URIs over QMP', async t => {
  if (!requires(t, 'qemu')) return
  await withClient(confined, async c => {
    const vm = c.service('vm')
    await vm.create({ name: 'q', paused: true, memory: '128M' })
    await assert.rejects(vm.qmp('q', 'human-monitor-command', { 'command-line': 'info status' }), code('CONFINED'))
    await assert.rejects(
      vm.qmp('q', 'migrate', { uri: `exec:touch ${join(confined.root, 'pwned')}` }),
      code('CONFINED', /exec:/),
    )
    assert.equal(existsSync(join(confined.root, 'pwned')), false)
    assert.equal((await vm.qmp('q', 'query-status')).status, 'prelaunch')
    await vm.destroy('q')
  })
})
