import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, beforeEach, test } from 'node:test'
import { loadConfig } from '../../src/config/load.ts'
import { buildFixturePools } from '../../src/runner/fixtureEngine/index.ts'
import { assignTestIds, loadTestFile } from '../../src/runner/loadFile.ts'
import { runInProcess, stepLines } from './harness.ts'
import { removeProject, writeProject } from './helpers.ts'

const log: string[] = []
;(globalThis as any).__vtLog = log
beforeEach(() => {
  log.length = 0
})

const header = `import { rootTest } from '$TEST'
const log = (globalThis as any).__vtLog as string[]
`

const dir = writeProject({
  'vt.config.ts': `export default { timeout: 2000, reuseWorkerAfterFailure: true, use: { fromConfig: 'config' } }\n`,
  'order.vt.ts': `${header}
const test = rootTest.extend<{ a: string; b: string; auto: void }, { w: string }>({
  w: [async ({}, use) => { log.push('setup w'); await use('W'); log.push('teardown w') }, { scope: 'worker' }],
  a: async ({ w }, use) => { log.push('setup a'); await use(w + 'a'); log.push('teardown a') },
  b: async ({ a }, use) => { log.push('setup b'); await use(a + 'b'); log.push('teardown b') },
  auto: [async ({}, use) => { log.push('setup auto'); await use(); log.push('teardown auto') }, { auto: true }],
})
test('uses b', async ({ b }) => { log.push('body ' + b) })
test('fails', async ({ b }) => { log.push('body2'); throw new Error('boom') })
test('never settles', async ({ a }) => { test.setTimeout(150); log.push('hang'); await new Promise(() => {}) })
test('no fixtures', async () => { log.push('plain') })
`,
  'override.vt.ts': `${header}
const base = rootTest.extend<{ v: number; opt: string; fromConfig: string }, { wopt: { x: number; y: number } }>({
  v: 1,
  opt: ['default', { option: true }],
  fromConfig: ['decl', { option: true }],
  wopt: [{ x: 1, y: 2 }, { scope: 'worker', option: true }],
})
const test = base.extend<{ v2: number }>({
  v: async ({ v }, use) => { await use(v + 1) },
  v2: async ({ v, opt }, use) => { await use(v * 10) },
})
test('sees override', async ({ v, v2, opt, fromConfig }) => { log.push(\`\${v} \${v2} \${opt} \${fromConfig}\`) })
test.describe('with use', () => {
  test.use({ opt: 'described', v: 5 })
  test('sees use', async ({ v, opt }) => { log.push(\`\${v} \${opt}\`) })
})
test.describe('same worker options in another order', () => {
  test.use({ wopt: { y: 2, x: 1 } })
  test('same hash', async ({ wopt }) => {})
})
test.describe('other worker options', () => {
  test.use({ wopt: { x: 2, y: 2 } })
  test('other hash', async ({ wopt }) => {})
})
`,
  'invalid.vt.ts': `${header}
const test = rootTest.extend<{ a: string; b: string; c: string; t: string; bad: string }, { w: string }>({
  a: async ({ b }, use) => use(b),
  b: async ({ c }, use) => use(c),
  c: async ({ a }, use) => use(a),
  t: async ({}, use) => use('t'),
  w: [async ({ t }, use) => use(t), { scope: 'worker' }],
  bad: async (args: any, use: any) => use(args),
})
test('uses unknown', async ({ nope }: any) => {})
test.beforeAll(async ({ t }) => {})
`,
  'worker-fails.vt.ts': `${header}
const test = rootTest.extend<{}, { broken: string; hangs: string }>({
  broken: [async ({}, use) => { log.push('broken setup'); throw new Error('cannot connect') }, { scope: 'worker' }],
  hangs: [async ({}, use) => { log.push('hangs setup'); await new Promise(() => {}) }, { scope: 'worker' }],
})
test('hangs in worker setup', async ({ hangs }) => {})
test('first', async ({ broken }) => {})
test('second', async ({ broken }) => {})
test('describe inside a test', () => { test.describe('nope', () => {}) })
`,
  'errors.vt.ts': `${header}
const test = rootTest.extend<{ noUse: string; throws: string; slowSetup: string; badTeardown: string; later: string }>({
  noUse: async ({}, use) => {},
  throws: async ({}, use) => { throw new Error('setup exploded') },
  slowSetup: [async ({}, use) => { await new Promise(r => setTimeout(r, 5000)); await use('x') }, { timeout: 100 }],
  badTeardown: async ({}, use) => { await use('x'); throw new Error('teardown exploded') },
  later: async ({}, use) => { await use('l'); log.push('teardown later') },
})
test('no use', async ({ noUse }) => {})
test('throws', async ({ throws }) => {})
test('fixture timeout', async ({ slowSetup }) => {})
test('teardown errors continue', async ({ later, badTeardown }) => {})
`,
})
after(() => removeProject(dir))

test('fixtures set up lazily in dependency order and tear down in reverse, always', async () => {
  const r = await runInProcess(dir, 'order.vt.ts')
  assert.equal(r.ends.get('uses b')?.status, 'passed')
  assert.equal(r.ends.get('fails')?.status, 'failed')
  assert.match(r.ends.get('fails')?.errors[0].message ?? '', /boom/)
  assert.equal(r.ends.get('never settles')?.status, 'timedOut')
  assert.match(r.ends.get('never settles')?.errors[0].message ?? '', /Test timeout of 150ms exceeded/)
  assert.equal(r.ends.get('no fixtures')?.status, 'passed')
  assert.deepEqual(log, [
    'setup auto',
    'setup w',
    'setup a',
    'setup b',
    'body Wab',
    'teardown b',
    'teardown a',
    'teardown auto',
    'setup auto',
    'setup a',
    'setup b',
    'body2',
    'teardown b',
    'teardown a',
    'teardown auto',
    'setup auto',
    'setup a',
    'hang',
    'teardown a',
    'teardown auto',
    'setup auto',
    'plain',
    'teardown auto',
    'teardown w',
  ])
})

test('the default worker stops the group after a failure and reports the rest as remaining', async () => {
  const dir2 = writeProject({
    'vt.config.ts': 'export default {}\n',
    'a.vt.ts': `${header}
rootTest('one', () => {})
rootTest('two', () => { throw new Error('x') })
rootTest('three', () => {})
`,
  })
  try {
    const r = await runInProcess(dir2, 'a.vt.ts')
    const done = r.messages.find(m => m.type === 'done')
    assert.ok(done && done.type === 'done')
    assert.equal(done.unusable, true)
    assert.deepEqual(
      done.remaining.map(id => r.titleOf.get(id)),
      ['three'],
    )
    assert.equal(r.ends.has('three'), false)
  } finally {
    removeProject(dir2)
  }
})

test('fixture steps appear in the test, box hides them', async () => {
  const r = await runInProcess(dir, 'order.vt.ts', { titles: ['uses b'] })
  assert.deepEqual(stepLines(r, 'uses b'), [
    'fixture: fixture: auto',
    'fixture: fixture: w',
    'fixture: fixture: a',
    'fixture: fixture: b',
    'fixture: fixture: b',
    'fixture: fixture: a',
    'fixture: fixture: auto',
  ])
})

test('an override gets the overridden value; options come from declaration, config, then test.use', async () => {
  const r = await runInProcess(dir, 'override.vt.ts', { titles: ['sees override', 'sees use'] })
  assert.equal(r.ends.get('sees override')?.status, 'passed', JSON.stringify(r.ends.get('sees override')?.errors))
  assert.deepEqual(log, ['2 20 default config', '5 described'])
})

test('worker hashes compare worker option values structurally', async () => {
  const config = await loadConfig(path.join(dir, 'vt.config.ts'))
  const suite = await loadTestFile(path.join(dir, 'override.vt.ts'), dir)
  assignTestIds(suite, 'project-0', 0)
  const errors = buildFixturePools(suite, config.projects[0], config)
  assert.deepEqual(errors, [])
  const hash = (title: string) => suite.allTests().find(t => t.title === title)!._workerHash
  assert.equal(hash('sees override'), hash('sees use'))
  assert.equal(hash('sees override'), hash('same hash'))
  assert.notEqual(hash('sees override'), hash('other hash'))
  const digest = (title: string) => suite.allTests().find(t => t.title === title)!._poolDigest
  assert.notEqual(digest('sees override'), digest('sees use'))
  // A different project gets a different hash.
  const other = { ...config.projects[0], id: 'other' }
  const suite2 = await loadTestFile(path.join(dir, 'override.vt.ts'), dir)
  buildFixturePools(suite2, other, config)
  assert.notEqual(suite2.allTests()[0]._workerHash, hash('sees override'))
})

test('validation: cycle, worker depending on test, non-destructured parameter, unknown fixture, with file:line', async () => {
  const config = await loadConfig(path.join(dir, 'vt.config.ts'))
  const file = path.join(dir, 'invalid.vt.ts')
  const suite = await loadTestFile(file, dir)
  const errors = buildFixturePools(suite, config.projects[0], config)
  const messages = errors.map(e => e.message)
  const find = (re: RegExp) => {
    const e = errors.find(e => re.test(e.message))
    assert.ok(e, `no error matching ${re} in:\n${messages.join('\n')}`)
    return e
  }
  const cycle = find(/dependency cycle/)
  assert.match(cycle.message, /"a" \(.*invalid\.vt\.ts:4:\d+\) -> "b" .* -> "c" .* -> "a"/)
  const worker = find(/Worker fixture "w" cannot depend on test fixture "t"/)
  assert.equal(worker.location?.file, file)
  assert.equal(worker.location?.line, 4)
  find(/Fixture "bad": First argument must use the object destructuring pattern/)
  const hook = find(/beforeAll hook "beforeAll hook" cannot use test-scoped fixture "t"/)
  assert.equal(hook.location?.line, 13)
  const unknown = find(/Test "uses unknown" has unknown parameter "nope"/)
  assert.equal(unknown.location?.line, 12)
  assert.match(unknown.snippet ?? '', /> 12 \| test\('uses unknown'/)
})

test('fixture failures name the fixture and its registration; teardown continues past errors', async () => {
  const r = await runInProcess(dir, 'errors.vt.ts')
  const noUse = r.ends.get('no use')!
  assert.equal(noUse.status, 'failed')
  assert.match(
    noUse.errors[0].message,
    /Fixture "noUse" \(test scope, registered at .*errors\.vt\.ts:4:\d+\) finished without calling use\(\)/,
  )
  const throws = r.ends.get('throws')!
  assert.match(throws.errors[0].message, /Fixture "throws" .* failed during setup: setup exploded/)
  assert.equal(throws.errors[0].location?.line, 6)
  const timeout = r.ends.get('fixture timeout')!
  assert.equal(timeout.status, 'timedOut')
  assert.match(timeout.errors[0].message, /Fixture "slowSetup" .* timeout of 100ms exceeded during setup/)
  const teardown = r.ends.get('teardown errors continue')!
  assert.equal(teardown.status, 'failed')
  assert.match(teardown.errors[0].message, /failed during teardown: teardown exploded/)
  assert.deepEqual(log, ['teardown later'])
})

test('a worker fixture that fails to set up fails its tests fast and makes the worker unusable', async () => {
  const r = await runInProcess(dir, 'worker-fails.vt.ts', { titles: ['first', 'second'] })
  assert.match(
    r.ends.get('first')?.errors[0].message ?? '',
    /Fixture "broken" \(worker scope, .*\) failed during setup: cannot connect/,
  )
  assert.equal(r.ends.has('second'), false)
  const done = r.messages.find(m => m.type === 'done')
  assert.ok(done?.type === 'done' && done.unusable)
  assert.deepEqual(log, ['broken setup'])
})

test('test.describe() inside a running test is an error naming the line', async () => {
  const r = await runInProcess(dir, 'worker-fails.vt.ts', { titles: ['describe inside a test'] })
  const error = r.ends.get('describe inside a test')!.errors[0]
  assert.match(
    error.message,
    /test\.describe\(\) cannot be called inside a test, hook or fixture \(at .*worker-fails\.vt\.ts:11:\d+\)/,
  )
})

test('a worker fixture whose setup hangs times the test out; the worker is unusable and still stops', async () => {
  const dir2 = writeProject({
    'vt.config.ts': `export default { timeout: 150 }\n`,
    'w.vt.ts': fs.readFileSync(path.join(dir, 'worker-fails.vt.ts'), 'utf8'),
  })
  try {
    const r = await runInProcess(dir2, 'w.vt.ts', { titles: ['hangs in worker setup', 'first'] })
    const end = r.ends.get('hangs in worker setup')!
    assert.equal(end.status, 'timedOut')
    assert.match(end.errors[0].message, /Test timeout of 150ms exceeded while setting up "hangs"/)
    const done = r.messages.find(m => m.type === 'done')
    assert.ok(done?.type === 'done' && done.unusable)
    assert.deepEqual(
      done.remaining.map(id => r.titleOf.get(id)),
      ['first'],
    )
    assert.deepEqual(r.messages.at(-1), { type: 'teardownErrors', errors: [] })
  } finally {
    removeProject(dir2)
  }
})
