// End to end: a worker that crashes is blamed on its test and the run goes on; Ctrl-C (SIGINT to vt)
// interrupts the running test and still tears its fixtures down; no process is left behind (runVt checks).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { logHelper, project, runVt, testByPath, waitForFile } from './helpers.ts'

test('a crashed worker is blamed on the running test and the rest still run', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'
test('before', async () => {})
test('exits the process', async () => { process.exit(3) })
test('after', async () => {})
`,
    'b.vt.ts': `import { test } from 'vt'\ntest('other file', async () => {})\n`,
  })
  const r = await runVt(p, ['-j', '1'])
  assert.equal(r.exitCode, 1, r.output)
  const crashed = testByPath(r.json, 'exits the process')
  assert.equal(crashed.status, 'unexpected')
  assert.match(JSON.stringify(crashed.results[0].errors), /exit|crash/i)
  assert.equal(testByPath(r.json, 'before').status, 'expected')
  assert.equal(testByPath(r.json, 'after').status, 'expected')
  assert.equal(testByPath(r.json, 'other file').status, 'expected')
})

test('SIGINT interrupts the running test, tears fixtures down, writes the reports and exits non-zero', async t => {
  const p = project(t, {
    'a.vt.ts': `import { writeFileSync } from 'node:fs'
import { test as base } from 'vt'
${logHelper}
const test = base.extend<{ tf: void }, { wf: void }>({
  wf: [async ({}, use) => { log('setup wf'); await use(); log('teardown wf') }, { scope: 'worker' }],
  tf: async ({ wf }, use) => { log('setup tf'); await use(); log('teardown tf') },
})
test('waits forever', async ({ tf }) => {
  writeFileSync('started', '')
  await new Promise(() => {})
})
test('never starts', async () => { log('never starts ran') })
`,
  })
  const r = await runVt(p, ['-j', '1'], {
    timeoutMs: 30_000,
    during: async (child, proj) => {
      await waitForFile(proj, 'started')
      child.kill('SIGINT')
    },
  })
  assert.equal(r.exitCode, 130, r.output)
  assert.deepEqual(p.log(), ['setup wf', 'setup tf', 'teardown tf', 'teardown wf'])
  const waiting = testByPath(r.json, 'waits forever')
  assert.deepEqual(
    waiting.results.map(x => x.status),
    ['interrupted'],
  )
  assert.equal(testByPath(r.json, 'never starts').results.length, 0)
  assert.equal(r.json!.stats.status, 'interrupted')
  assert.ok(r.junit, 'the JUnit report is still written')
})
