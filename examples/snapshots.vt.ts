// Instant VMs (project `two-host`): the `vm` fixture starts from a warm template of its spec instead of booting;
// a snapshot resets a VM between steps, and clones of a snapshot are machines of their own.
import { expect, test } from 'vmtest-cluster'

test('the vm fixture starts from a warm template', async ({ vm }) => {
  expect(vm.info.restored?.from).toBe('template')
  // A machine of its own: its name, a clock of now, its own random bytes.
  expect(await vm.succeed('hostname')).toBe(`${vm.name}\n`)
  const clock = Number(await vm.succeed('date +%s'))
  expect(Math.abs(clock - Date.now() / 1000)).toBeLessThan(5)
})

test('a snapshot resets a VM between steps', async ({ vm }) => {
  await vm.succeed('echo clean > /tmp/state')
  await vm.snapshot('clean')
  for (const step of ['one', 'two']) {
    await vm.succeed(`echo ${step} > /tmp/state; echo ${step} >> /tmp/log`)
    await vm.restore('clean')
    expect(await vm.succeed('cat /tmp/state; cat /tmp/log 2>/dev/null || true')).toBe('clean\n')
  }
})

test('clones of a snapshot: same state, own name, MAC and random bytes', async ({ vm, createVm }) => {
  await vm.succeed('echo prepared > /tmp/setup')
  const ready = await vm.snapshot('ready')
  const clones = await Promise.all([createVm({ from: ready }), createVm({ from: ready })])
  for (const c of clones) expect(await c.succeed('cat /tmp/setup; hostname')).toBe(`prepared\n${c.name}\n`)
  const random = (c: (typeof clones)[number]) => c.succeed('head -c 16 /dev/urandom | od -An -tx1')
  expect(await random(clones[0])).not.toBe(await random(clones[1]))
})

test.describe('without templates', () => {
  test.use({ vmTemplates: false })

  test('the vm fixture boots', async ({ vm }) => {
    expect(vm.info.restored).toBeUndefined()
    await vm.console.waitFor(/vt-tiny: ready after/)
  })
})
