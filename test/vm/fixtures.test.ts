// The vm fixtures through the real `vt test`: options from test.use(), createVm on a chosen host, the console
// log and QMP transcript attached to a failed test, and no QEMU left once the run is over.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { allTests, project, runVt } from '../e2e/helpers.ts'
import { requires } from '../helpers/requirements.ts'
import { qemuProcesses } from './helpers.ts'

test('vm fixtures: options, createVm, diagnostics attached on failure, nothing left', async t => {
  if (!requires(t, 'qemu')) return
  const p = project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'
export default defineConfig({ timeout: 90_000, projects: [{ name: 'one', cluster: { hosts: 1, isolation: 'none' } }] })
`,
    'vms.vt.ts': `import { expect, test } from 'vt'
test.use({ memory: '160M' })
test('options reach the VM', async ({ vm }) => {
  const kib = Number((await vm.succeed("awk '/MemTotal/ {print $2}' /proc/meminfo")).trim())
  expect(kib).toBeLessThan(160 * 1024)
  expect(vm.info.memoryMiB).toBe(160)
})
test('createVm names the host, and a failure carries console and transcript', async ({ createVm, cluster }) => {
  const vm = await createVm({ host: cluster.hosts[0].name, name: 'second', memory: 128 })
  await vm.succeed('echo marker-in-console > /dev/console')
  await vm.qmp('query-status')
  expect(await vm.succeed('echo $((6 * 7))')).toBe('41\\n')
})
test('a bad host is a clear error', async ({ createVm }) => {
  await expect(createVm({ host: 'nope' })).rejects.toThrow(/no host named "nope" in the cluster/)
  await expect(createVm({ host: 5 })).rejects.toThrow(/host index 5 is out of range/)
})
`,
  })
  const r = await runVt(p, [], { timeoutMs: 240_000 })
  const tests = allTests(r.json)
  const byTitle = (s: string) => tests.find(x => x.title.startsWith(s))
  assert.equal(byTitle('options reach')?.results[0].status, 'passed', r.output)
  assert.equal(byTitle('a bad host')?.results[0].status, 'passed', r.output)
  const failed = byTitle('createVm names')
  assert.equal(failed?.results[0].status, 'failed', r.output)
  const names = failed?.results[0].attachments.map(a => a.name) ?? []
  assert.ok(names.includes('second-console.log'), names.join(', '))
  assert.ok(names.includes('second-qmp.txt'), names.join(', '))
  const body = (name: string) => {
    const a = failed?.results[0].attachments.find(x => x.name === name) as { body?: string; path?: string } | undefined
    if (a?.body) return Buffer.from(a.body, 'base64').toString('utf8')
    return a?.path ? readFileSync(a.path, 'utf8') : ''
  }
  assert.match(body('second-console.log'), /marker-in-console/)
  assert.match(body('second-qmp.txt'), /-> query-status/)
  // The VM named 'second' (QEMU -name vt-second) is gone with the run.
  assert.deepEqual(qemuProcesses('vt-second,'), [])
  assert.equal(r.exitCode, 1)
})
