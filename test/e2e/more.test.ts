// End to end: --max-failures, describe.configure and describe.parallel, --output and outputPath, --quiet,
// and a second Ctrl-C that stops a teardown that hangs.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { allTests, bothWorkers, logHelper, project, runVt, testByPath, waitForFile } from './helpers.ts'

test('--max-failures n stops after n failures', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'
for (let i = 0; i < 5; i++) test('fails ' + i, async () => { throw new Error('x' + i) })
`,
  })
  const r = await runVt(p, ['-j', '1', '--max-failures', '2'])
  assert.equal(r.exitCode, 1, r.output)
  const failed = allTests(r.json).filter(x => x.results.some(res => res.status === 'failed'))
  assert.equal(failed.length, 2)
  assert.equal(r.json!.stats.didNotRun, 3)
})

test('describe.configure sets retries and timeout; describe.parallel runs a file on several workers', async t => {
  const p = project(t, {
    'configure.vt.ts': `import { test } from 'vt'
test.describe('configured', () => {
  test.describe.configure({ retries: 2, timeout: 250 })
  test('third time lucky', async () => { if (test.info().retry < 2) throw new Error('again') })
  test('too slow', async () => { await new Promise(r => setTimeout(r, 2000)) })
})
`,
    'parallel.vt.ts': `import { test } from 'vt'
${bothWorkers}
test.describe.parallel('together', () => {
  for (let i = 0; i < 4; i++) test('p' + i, async () => bothWorkers(test.info().parallelIndex))
})
`,
  })
  const r = await runVt(p, ['-j', '1', 'configure.vt.ts'])
  assert.equal(r.exitCode, 1, r.output)
  const lucky = testByPath(r.json, 'configured › third time lucky')
  assert.deepEqual(
    lucky.results.map(x => x.status),
    ['failed', 'failed', 'passed'],
  )
  const slow = testByPath(r.json, 'configured › too slow')
  assert.equal(slow.results.length, 3)
  assert.ok(slow.results.every(x => x.status === 'timedOut'))
  // Alone, so that both workers are free: the four tests of one file spread over them.
  const together = await runVt(p, ['-j', '2', 'parallel.vt.ts'])
  assert.equal(together.exitCode, 0, together.output)
  const parallel = allTests(together.json).filter(x => x.path.startsWith('together'))
  assert.equal(parallel.length, 4)
  assert.equal(new Set(parallel.map(x => x.results[0].parallelIndex)).size, 2)
})

test('--output moves test artifacts and .last-run.json; outputPath is per test', async t => {
  const p = project(t, {
    'a.vt.ts': `import { writeFileSync } from 'node:fs'
import { test } from 'vt'
test('one', async () => { writeFileSync(test.info().outputPath('x.txt'), 'one') })
test('two', async () => { writeFileSync(test.info().outputPath('x.txt'), 'two') })
`,
  })
  const r = await runVt(p, ['--output', 'artifacts'])
  assert.equal(r.exitCode, 0, r.output)
  assert.ok(p.exists('artifacts/.last-run.json'))
  const found: string[] = []
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name)
      if (e.isDirectory()) walk(full)
      else if (e.name === 'x.txt') found.push(fs.readFileSync(full, 'utf8'))
    }
  }
  walk(path.join(p.dir, 'artifacts'))
  assert.deepEqual(found.sort(), ['one', 'two'])
  assert.ok(!p.exists('test-results'))
})

test('--quiet keeps test output off the terminal', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'\ntest('talks', async () => { console.log('chatter') })\n`,
  })
  const loud = await runVt(p, [])
  assert.match(loud.stdout, /chatter/)
  const quiet = await runVt(p, ['--quiet'])
  assert.equal(quiet.exitCode, 0, quiet.output)
  assert.doesNotMatch(quiet.stdout, /chatter/)
  assert.match(JSON.stringify(testByPath(quiet.json, 'talks').results[0].stdout), /chatter/, 'still in the report')
})

test('a second SIGINT stops a teardown that hangs, and leaves no process behind', async t => {
  const p = project(t, {
    'a.vt.ts': `import { writeFileSync } from 'node:fs'
import { test as base } from 'vt'
${logHelper}
const test = base.extend<{ stubborn: void }>({
  stubborn: async ({}, use) => { await use(); log('teardown starts'); await new Promise(() => {}) },
})
test('waits', async ({ stubborn }) => { writeFileSync('started', ''); await new Promise(() => {}) })
`,
  })
  const r = await runVt(p, ['-j', '1', '--timeout', '0'], {
    timeoutMs: 30_000,
    during: async (child, proj) => {
      await waitForFile(proj, 'started')
      child.kill('SIGINT')
      await waitForFile(proj, 'log.txt')
      child.kill('SIGINT')
    },
  })
  assert.notEqual(r.exitCode, 0, r.output)
  assert.deepEqual(p.log(), ['teardown starts'])
})
