// The `cluster` and `hosts` fixtures through the real `vt test`: a project with an embedded cluster, a test
// that fails gets each host's agent log for its time window attached; a project without a cluster gets a
// clear error; nothing survives the run.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { project, runVt } from '../e2e/helpers.ts'

const config = `import { defineConfig } from 'vt'
export default defineConfig({
  projects: [
    { name: 'pair', testMatch: 'pair.vt.ts', cluster: { hosts: 2, isolation: 'none', labels: [{ role: 'a' }, { role: 'b' }] } },
    { name: 'bare', testMatch: 'bare.vt.ts' },
  ],
})
`

test('cluster fixture: hosts connected per worker, agent logs attached to a failed test', async t => {
  const p = project(t, {
    'vt.config.ts': config,
    'pair.vt.ts': `import { test, expect } from 'vt'
test('passes on both hosts', async ({ hosts }) => {
  expect(hosts.map(h => h.name)).toEqual(['host1', 'host2'])
  expect(hosts.map(h => h.labels.role)).toEqual(['a', 'b'])
  for (const h of hosts) expect((await h.succeed('echo hi-from-' + h.name)).trim()).toBe('hi-from-' + h.name)
})
test('fails after running a marked command', async ({ cluster }) => {
  await cluster.host('host2').exec('echo marker-for-the-log')
  expect(1).toBe(2)
})
`,
    'bare.vt.ts': `import { test } from 'vt'
test('asks for a cluster it does not have', async ({ cluster }) => {
  void cluster
})
`,
  })
  const r = await runVt(p, ['--workers', '1'], { timeoutMs: 120_000 })
  assert.equal(r.exitCode, 1, r.output)
  const specs = r.json?.suites.flatMap(function all(s): any[] {
    return [...s.specs, ...(s.suites ?? []).flatMap(all)]
  })
  const byTitle = new Map(specs?.map(s => [s.title, s.tests[0].results[0]]))
  assert.equal(byTitle.get('passes on both hosts')?.status, 'passed', r.output)
  const failed = byTitle.get('fails after running a marked command')
  assert.equal(failed?.status, 'failed')
  const names = failed?.attachments.map((a: { name: string }) => a.name).sort()
  assert.deepEqual(names, ['agent-host1.log', 'agent-host2.log'])
  const host2Log = failed?.attachments.find((a: { name: string }) => a.name === 'agent-host2.log')
  const body = host2Log.body ? Buffer.from(host2Log.body, 'base64').toString() : p.read(host2Log.path)
  assert.match(body, /INFO exec .*cmd="\/bin\/sh -c echo marker-for-the-log"/)
  const bare = byTitle.get('asks for a cluster it does not have')
  assert.equal(bare?.status, 'failed')
  assert.match(JSON.stringify(bare?.errors), /project \\"bare\\" has no cluster: add `cluster: \{ hosts: 2 \}`/)
})
