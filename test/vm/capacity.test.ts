// VM capacity through the real `vt test` and real QEMU: a VM books its memory and cpus on its host; one that
// does not fit fails naming what is free where, or waits and starts once another VM is destroyed; a migration
// moves the booking (a refused one leaves it on the source); a crashed QEMU gives it back.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { allTests, project, runVt } from '../e2e/helpers.ts'
import { requires } from '../helpers/requirements.ts'
import { qemuProcesses } from './helpers.ts'

const spec = `import { expect, test } from 'vt'
test.use({ memory: '200M' })
const booked = async host =>
  (await host.service('session').capacity()).reservations.filter(r => r.kind === 'vm').map(r => r.label).sort()

test('a VM that does not fit fails naming what is free where', async ({ createVm, cluster }) => {
  const [a] = cluster.hosts
  await createVm({ host: a, name: 'capfirst' })
  await expect(createVm({ host: a, name: 'capsecond', capacityTimeout: 0 })).rejects.toThrow(
    /VM capsecond needs 200 MiB and 1 cpu: host host1 has 120 MiB free of 320 MiB and 3 of 4 cpus \\(1 VM: capfirst\\); elsewhere: host host2 has 320 MiB free of 320 MiB and 4 of 4 cpus \\(0 VMs\\)\\. Put the VM on a host with room/,
  )
  expect(await booked(a)).toEqual(['capfirst'])
})

test('a VM that waits starts once another VM is destroyed', async ({ createVm, cluster }) => {
  const [a] = cluster.hosts
  const first = await createVm({ host: a, name: 'capw1' })
  let started = false
  const waiting = createVm({ host: a, name: 'capw2', capacityTimeout: 120_000 }).then(vm => {
    started = true
    return vm
  })
  await new Promise(r => setTimeout(r, 1000))
  expect(started).toBe(false)
  await first.destroy()
  const second = await waiting
  expect(await second.succeed('echo up')).toBe('up\\n')
  expect(await booked(a)).toEqual(['capw2'])
})

test('migration moves the booking, a refused one leaves it; a crash gives it back', async ({ createVm, cluster }) => {
  const [a, b] = cluster.hosts
  const vm = await createVm({ host: a, name: 'capmover' })
  const blocker = await cluster.select({ minMemory: '200M', exclude: [a] })
  await expect(vm.migrate({ to: b })).rejects.toThrow(/capmover needs 200 MiB and 1 cpu: host host2 has 120 MiB free/)
  expect(await booked(a)).toEqual(['capmover'])
  expect(await booked(b)).toEqual([])
  await blocker.release()
  await vm.migrate({ to: b })
  expect(await booked(a)).toEqual([])
  expect(await booked(b)).toEqual(['capmover'])
  expect(await vm.succeed('echo moved')).toBe('moved\\n')
  await cluster.faults.killQemu(vm)
  await expect.poll(() => booked(b), { timeout: 30_000 }).toEqual([])
})
`

test('VM capacity: clear refusal, waiting, migration moves the booking, crash releases it', async t => {
  if (!requires(t, 'qemu')) return
  const p = project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'
export default defineConfig({ timeout: 180_000, projects: [{ name: 'cap',
  cluster: { hosts: 2, isolation: 'none', capacity: { memory: '320M', cpus: 4 } } }] })
`,
    'capacity.vt.ts': spec,
  })
  const r = await runVt(p, [], { timeoutMs: 480_000 })
  const tests = allTests(r.json)
  assert.equal(tests.length, 3, r.output)
  for (const x of tests) assert.equal(x.results[0].status, 'passed', `${x.title}\n${r.output}`)
  assert.equal(r.exitCode, 0, r.output)
  for (const name of ['capfirst', 'capsecond', 'capw1', 'capw2', 'capmover'])
    assert.deepEqual(qemuProcesses(`vt-${name},`), [], `QEMU of ${name} left behind`)
})
