// Barriers and keys between tests running at the same time in different workers of one `vt test` run (the
// main process holds them), through the real binary: release with arrival sub-steps, a worker killed while
// waiting breaks the barrier with an error naming it, a timeout names who arrived and who is missing.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { project, runVt, testByPath } from '../e2e/helpers.ts'

const config = `import { defineConfig } from 'vt'
export default defineConfig({ workers: 2, timeout: 30_000, projects: [{ name: 'p', cluster: { hosts: 1 } }] })
`

function stepTitles(steps: any[] | undefined, out: string[] = []): string[] {
  for (const s of steps ?? []) {
    out.push(s.title)
    stepTitles(s.steps, out)
  }
  return out
}

test('two workers meet at a barrier and pass a value; the steps show who arrived when', async t => {
  const p = project(t, {
    'vt.config.ts': config,
    'a.vt.ts': `import { test, expect } from 'vt'
test('server', async ({ cluster }) => {
  await cluster.barrier('both-up', { parties: 2, timeout: 20_000 })
  await cluster.share('addr', '10.1.2.3')
  const all = await cluster.waitAll('done', 1, { timeout: 20_000 })
  expect(all).toEqual(['client ok'])
})
`,
    'b.vt.ts': `import { test, expect } from 'vt'
test('client', async ({ cluster }) => {
  const arrivals = await cluster.barrier('both-up', { parties: 2, timeout: 20_000 })
  const who = arrivals.map(a => a.who)
  expect(who).toHaveLength(2)
  expect(who).toContain('test "client" (worker ' + test.info().workerIndex + ')')
  expect(who.some(w => /^test "server" \\(worker \\d\\)$/.test(w))).toBe(true)
  expect(await cluster.wait('addr', { timeout: 20_000 })).toBe('10.1.2.3')
  await cluster.share('done', 'client ok')
})
`,
  })
  const r = await runVt(p, [], { timeoutMs: 90_000 })
  assert.equal(r.exitCode, 0, r.output)
  const client = testByPath(r.json, 'client').results[0] as any
  const titles = stepTitles(client.steps)
  assert.ok(titles.includes('barrier "both-up" (2 parties)'), titles.join('\n'))
  assert.equal(
    titles.filter(x => /^arrived \+\d+\.\d\d s: test "(server|client)" \(worker \d\)$/.test(x)).length,
    2,
    titles.join('\n'),
  )
  assert.ok(titles.includes('wait "addr"') && titles.some(x => /^shared by test "server"/.test(x)), titles.join('\n'))
})

test('a worker that dies at a barrier releases it with an error naming it; a timeout names who is missing', async t => {
  const p = project(t, {
    'vt.config.ts': config,
    'a.vt.ts': `import { test } from 'vt'
test('dies', async ({ cluster }) => {
  void cluster.barrier('meet', { parties: 3 })
  await cluster.wait('survivor-waits', { timeout: 20_000 })
  process.kill(process.pid, 'SIGKILL')
})
`,
    'b.vt.ts': `import { test, expect } from 'vt'
test('survives', async ({ cluster }) => {
  const meet = cluster.barrier('meet', { parties: 3 })
  await cluster.share('survivor-waits', 1)
  await expect(meet).rejects.toThrow(/^barrier "meet" broken: test "dies" \\(worker \\d\\) left before it was released \\(worker process \\d exited \\(signal SIGKILL\\)\\); 2 of 3 arrived: test "(dies|survives)" \\(worker \\d\\) \\(\\+0\\.0 s\\), test "(dies|survives)" \\(worker \\d\\) \\(\\+\\d+\\.\\d s\\); missing 1$/)
})
test('times out', async ({ cluster }) => {
  const e = await cluster.barrier('lonely', { parties: 2, timeout: 200 }).catch(e => e)
  expect(e.name).toBe('SyncTimeoutError')
  expect(e.message).toMatch(/^barrier "lonely" failed: test "times out" \\(worker \\d\\) timed out after 0\\.2 s; 1 of 2 arrived: test "times out" \\(worker \\d\\) \\(\\+0\\.0 s\\); missing 1$/)
})
`,
  })
  const r = await runVt(p, [], { timeoutMs: 90_000 })
  assert.equal(testByPath(r.json, 'survives').results[0].status, 'passed', r.output)
  assert.equal(testByPath(r.json, 'times out').results[0].status, 'passed', r.output)
  const dies = testByPath(r.json, 'dies').results[0]
  assert.equal(dies.status, 'failed', r.output)
  assert.match(r.output, /worker process exited unexpectedly \(signal SIGKILL\)/)
})
