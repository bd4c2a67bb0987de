// End to end: fixtures' setup/teardown order, teardown after failure and timeout, worker reuse and replacement.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { allTests, logHelper, project, runVt, statuses, testByPath } from './helpers.ts'

const fixturesFile = `
import { test as base } from 'vt'
${logHelper}
export { log }
export const test = base.extend<{ tf: string }, { wf: string; flavor: string }>({
  flavor: ['plain', { scope: 'worker', option: true }],
  wf: [
    async ({ flavor }, use, workerInfo) => {
      log(\`setup wf \${flavor} w\${workerInfo.workerIndex}\`)
      await use('w')
      log(\`teardown wf \${flavor} w\${workerInfo.workerIndex}\`)
    },
    { scope: 'worker' },
  ],
  tf: async ({ wf }, use, testInfo) => {
    log(\`setup tf(\${wf}) \${testInfo.title}\`)
    await use('t')
    log(\`teardown tf \${testInfo.title}\`)
  },
})
`

test('fixtures set up lazily in dependency order and torn down in reverse, after failures and timeouts too', async t => {
  const p = project(t, {
    'fixtures.ts': fixturesFile,
    'a.vt.ts': `
import { log, test } from './fixtures.ts'
test('passes', async ({ tf }) => { log('body passes ' + tf) })
test('fails', async ({ tf }) => { log('body fails'); throw new Error('boom') })
test('hangs', async ({ tf }) => { test.setTimeout(500); log('body hangs'); await new Promise(() => {}) })
test('no fixtures', async () => { log('body no fixtures') })
`,
  })
  const r = await runVt(p, ['-j', '1'])
  assert.equal(r.exitCode, 1, r.output)
  assert.deepEqual(p.log(), [
    'setup wf plain w0',
    'setup tf(w) passes',
    'body passes t',
    'teardown tf passes',
    'setup tf(w) fails',
    'body fails',
    'teardown tf fails',
    // the failed test's worker is replaced: its worker fixtures are torn down
    'teardown wf plain w0',
    'setup wf plain w1',
    'setup tf(w) hangs',
    'body hangs',
    'teardown tf hangs',
    'teardown wf plain w1',
    // a test that uses no fixture sets none up (lazy), in a fresh worker again
    'body no fixtures',
  ])
  assert.deepEqual(statuses(testByPath(r.json, 'passes')), ['passed'])
  assert.deepEqual(statuses(testByPath(r.json, 'fails')), ['failed'])
  const hangs = testByPath(r.json, 'hangs')
  assert.deepEqual(statuses(hangs), ['timedOut'])
  assert.match(hangs.results[0].errors.map(e => e.message).join('\n'), /timeout of 500ms/i)
  // fixture setup and teardown appear as steps
  const steps = testByPath(r.json, 'passes').results[0].steps
  assert.ok(
    JSON.stringify(steps).includes('"category":"fixture"'),
    `fixture steps expected in ${JSON.stringify(steps)}`,
  )
})

test('worker fixtures are reused across files when the worker hash matches, a new worker when test.use changes a worker option', async t => {
  const p = project(t, {
    'fixtures.ts': fixturesFile,
    'a.vt.ts': `import { test } from './fixtures.ts'\ntest('a1', async ({ wf }) => {})\ntest('a2', async ({ tf }) => {})\n`,
    'b.vt.ts': `import { test } from './fixtures.ts'\ntest('b1', async ({ wf }) => {})\n`,
    'c.vt.ts': `import { test } from './fixtures.ts'\ntest.use({ flavor: 'spicy' })\ntest('c1', async ({ wf }) => {})\n`,
    'd.vt.ts': `import { test } from './fixtures.ts'\ntest.use({ flavor: 'plain' })\ntest('d1', async ({ wf }) => {})\n`,
  })
  const r = await runVt(p, ['-j', '1'])
  assert.equal(r.exitCode, 0, r.output)
  const worker = (title: string) => testByPath(r.json, title).results[0].workerIndex
  assert.equal(worker('a1'), worker('a2'))
  assert.equal(worker('a1'), worker('b1'), 'same worker hash: the worker is reused across files')
  assert.equal(worker('a1'), worker('d1'), 'test.use with the default value compares equal structurally')
  assert.notEqual(worker('a1'), worker('c1'), 'a different worker option needs another worker')
  const setups = p.log().filter(l => l.startsWith('setup wf'))
  assert.deepEqual(setups.map(l => l.split(' ')[2]).sort(), ['plain', 'spicy'])
  // every worker fixture set up was torn down
  assert.equal(p.log().filter(l => l.startsWith('teardown wf')).length, setups.length)
})

test('a worker is replaced after a failure by default and kept with reuseWorkerAfterFailure', async t => {
  const spec = `import { test } from './fixtures.ts'
test('first fails', async ({ wf }) => { throw new Error('first') })
test('second passes', async ({ wf }) => {})
`
  const replaced = project(t, { 'fixtures.ts': fixturesFile, 'a.vt.ts': spec })
  const r1 = await runVt(replaced, ['-j', '1'])
  assert.equal(r1.exitCode, 1, r1.output)
  assert.notEqual(
    testByPath(r1.json, 'first fails').results[0].workerIndex,
    testByPath(r1.json, 'second passes').results[0].workerIndex,
  )
  assert.equal(replaced.log().filter(l => l.startsWith('setup wf')).length, 2)

  const kept = project(t, {
    'fixtures.ts': fixturesFile,
    'a.vt.ts': spec,
    'vt.config.ts': `import { defineConfig } from 'vt'\nexport default defineConfig({ reuseWorkerAfterFailure: true })\n`,
  })
  const r2 = await runVt(kept, ['-j', '1'])
  assert.equal(r2.exitCode, 1, r2.output)
  assert.equal(
    testByPath(r2.json, 'first fails').results[0].workerIndex,
    testByPath(r2.json, 'second passes').results[0].workerIndex,
  )
  assert.deepEqual(
    kept.log().filter(l => l.includes(' wf ')),
    ['setup wf plain w0', 'teardown wf plain w0'],
  )
})

test('a fixture teardown error is reported and later teardowns still run', async t => {
  const p = project(t, {
    'a.vt.ts': `
import { test as base } from 'vt'
${logHelper}
const test = base.extend<{ outer: void; inner: void }>({
  outer: async ({}, use) => { await use(); log('teardown outer') },
  inner: async ({ outer }, use) => { await use(); log('teardown inner'); throw new Error('inner teardown broke') },
})
test('uses both', async ({ inner }) => {})
`,
  })
  const r = await runVt(p, ['-j', '1'])
  assert.equal(r.exitCode, 1, r.output)
  assert.deepEqual(p.log(), ['teardown inner', 'teardown outer'])
  const uses = testByPath(r.json, 'uses both')
  assert.equal(uses.results[0].status, 'failed')
  assert.match(JSON.stringify(uses.results[0].errors), /inner teardown broke/)
  assert.equal(allTests(r.json).length, 1)
})

test('a worker fixture whose teardown throws is reported as an error of the run', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test as base } from 'vt'
const test = base.extend<{}, { broken: void }>({
  broken: [async ({}, use) => { await use(); throw new Error('worker teardown broke') }, { scope: 'worker' }],
})
test('passes', async ({ broken }) => {})
`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  assert.equal(testByPath(r.json, 'passes').status, 'expected')
  assert.match(JSON.stringify(r.json!.errors), /worker teardown broke/)
  assert.match(r.stdout, /worker teardown broke/)
})

test("a fixture that hangs hits its own timeout, named in the error, and the test's other fixtures are torn down", async t => {
  const p = project(t, {
    'a.vt.ts': `import { test as base } from 'vt'
${logHelper}
const test = base.extend<{ first: void; stuck: void }>({
  first: async ({}, use) => { log('setup first'); await use(); log('teardown first') },
  stuck: [async ({ first }, use) => { await new Promise(() => {}); await use() }, { timeout: 300 }],
})
test('uses stuck', async ({ stuck }) => { log('body ran') })
`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  const stuck = testByPath(r.json, 'uses stuck')
  assert.equal(stuck.results[0].status, 'timedOut')
  assert.match(JSON.stringify(stuck.results[0].errors), /stuck/)
  assert.deepEqual(p.log(), ['setup first', 'teardown first'])
})

test('output of worker fixtures outside any test (teardown at stop) reaches the reporters', async t => {
  const p = project(t, {
    'a.vt.ts': `
import { test as base } from 'vt'
const test = base.extend<{}, { db: string }>({
  db: [async ({}, use) => { console.log('db up'); await use('db'); console.log('db down') }, { scope: 'worker' }],
})
test('uses db', async ({ db }) => {})
`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 0, r.output)
  assert.match(r.stdout, /db up/)
  assert.match(r.stdout, /db down/)
})
