// vt-sync where scripts run: in a guest booted from the tiny image (over its command channel) and on a host
// (host.exec/host.spawn, through the agent's unix socket), in the same barrier as spec code; a guest whose QEMU
// is killed at a barrier breaks it with an error naming the VM; usage errors and timeouts give exit codes.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { project, runVt, testByPath } from '../e2e/helpers.ts'
import { requires } from '../helpers/requirements.ts'

const config = `import { defineConfig } from 'vt'
export default defineConfig({ workers: 1, timeout: 150_000, use: { memory: '128M', accel: 'tcg' }, projects: [{ name: 'p', cluster: { hosts: 2 } }] })
`

test('a guest, a host script and spec code meet at one barrier; a killed guest breaks it naming the VM', async t => {
  if (!requires(t, 'qemu')) return
  const p = project(t, {
    'vt.config.ts': config,
    'a.vt.ts': `import { test, expect } from 'vt'
test('meet', async ({ cluster, createVm }) => {
  const [h1, h2] = cluster.hosts
  const vm = await createVm({ host: h2 })
  const guest = vm.exec('vt-sync barrier meet 3 --timeout 120 && vt-sync wait addr --timeout 60', { timeout: 130_000 })
  const host = h1.exec('vt-sync barrier meet 3 --timeout 120 && vt-sync send addr "10.9.8.7 x" && vt-sync wait-all done 1')
  const arrivals = await cluster.barrier('meet', { parties: 3, timeout: 120_000 })
  const who = arrivals.map(a => a.who)
  expect(who).toContain('VM ' + vm.name + ' on host ' + h2.name)
  expect(who.some(w => w.startsWith('host ' + h1.name + ': \`/bin/sh -c vt-sync barrier meet 3'))).toBe(true)
  const g = await guest
  expect(g.stdout).toBe('10.9.8.7 x\\n')
  expect(g.exitCode).toBe(0)
  await cluster.share('done', 'yes')
  const h = await host
  expect(h.stdout).toBe('yes\\n')
  expect(h.exitCode).toBe(0)
  // Exit codes: timeout 2, usage 64, the same in guests and on hosts.
  for (const run of [(c: string) => vm.exec(c), (c: string) => h1.exec(c)]) {
    const late = await run('vt-sync wait never --timeout 0.2')
    expect(late.exitCode).toBe(2)
    expect(late.stderr).toMatch(/timed out after 0\\.2 s waiting for key "never"/)
    expect((await run('vt-sync barrier')).exitCode).toBe(64)
    const bad = await run('vt-sync barrier "bad name" 2')
    expect(bad.exitCode).toBe(64)
    expect(bad.stderr).toMatch(/1-128 characters of A-Z a-z 0-9/)
  }
})

test.describe('group', () => {
  test.use({ roles: { server: { count: 1, hosts: ['host2'] } }, autoStart: false })
  test('autoStart false, pinned, role known in the guest', async ({ group }) => {
    expect(() => group.all).toThrow('not started (autoStart: false): call await group.start() first')
    expect(group.placement.map(p => p.host.name)).toEqual(['host2'])
    await group.start()
    const [s] = group.server
    expect(s.host.name).toBe('host2')
    expect((await s.succeed('vt-sync role')).trim()).toBe('server 0')
    expect(group.env(s)).toEqual({ VT_ROLE: 'server', VT_ROLE_INDEX: '0' })
  })
})

test('killed', async ({ cluster, createVm }) => {
  const vm = await createVm({ host: 1 })
  let guestThere!: () => void
  const there = new Promise<void>(r => (guestThere = r))
  const barrier = cluster.barrier('doomed', { parties: 3, onArrival: a => a.who.startsWith('VM ') && guestThere() })
  const guest = vm.exec('vt-sync barrier doomed 3', { timeout: 120_000 }).catch(e => e)
  await there
  process.kill(vm.info.pid, 'SIGKILL')
  await expect(barrier).rejects.toThrow(/^barrier "doomed" broken: VM \\S+ on host host2 left before it was released \\(VM \\S+ on host host2: QEMU was killed by SIGKILL\\); 2 of 3 arrived/)
  expect(String(await guest)).toMatch(/QEMU was killed by SIGKILL/)
})
`,
  })
  const r = await runVt(p, [], { timeoutMs: 400_000 })
  assert.equal(testByPath(r.json, 'meet').results[0].status, 'passed', r.output)
  assert.equal(testByPath(r.json, 'killed').results[0].status, 'passed', r.output)
  assert.equal(
    testByPath(r.json, 'group › autoStart false, pinned, role known in the guest').results[0].status,
    'passed',
    r.output,
  )
})
