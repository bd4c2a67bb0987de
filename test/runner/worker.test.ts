import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, beforeEach, test } from 'node:test'
import { runInProcess, stepLines } from './harness.ts'
import { removeProject, writeProject } from './helpers.ts'

const log: string[] = []
;(globalThis as any).__vtLog = log
beforeEach(() => {
  log.length = 0
})

const header = `import { rootTest } from '$TEST'
import { expect } from '$EXPECT'
const log = (globalThis as any).__vtLog as string[]
`

const dir = writeProject({
  'vt.config.ts': `export default { timeout: 3000, reuseWorkerAfterFailure: true, outputDir: 'out' }\n`,
  'hooks.vt.ts': `${header}
const test = rootTest.extend<{ t: string }, { w: string }>({
  w: [async ({}, use) => { log.push('w up'); await use('W'); log.push('w down') }, { scope: 'worker' }],
  t: async ({}, use) => { log.push('t up'); await use('T'); log.push('t down') },
})
test.beforeAll(async ({ w }) => { log.push('beforeAll ' + w) })
test.afterAll(async () => { log.push('afterAll') })
test.beforeEach(async ({ t }) => { log.push('beforeEach ' + t) })
test.afterEach('named after', async () => { log.push('afterEach') })
test('first', async () => { log.push('first') })
test.describe('inner', () => {
  test.beforeAll(() => { log.push('inner beforeAll') })
  test.afterAll(() => { log.push('inner afterAll') })
  test('second', async ({ t }, testInfo) => { log.push('second ' + testInfo.titlePath.join('|')) })
})
test('third', () => { log.push('third') })
`,
  'modifiers.vt.ts': `${header}
const test = rootTest.extend<{ flag: boolean }>({ flag: [true, { option: true }] })
test.skip('declared skip', () => { log.push('never') })
test.fixme('declared fixme', () => { log.push('never') })
test('runtime skip', () => { test.skip(); log.push('never') })
test('runtime skip false', () => { test.skip(false, 'no'); log.push('ran') })
test('runtime skip with reason', () => { test.skip(true, 'because'); log.push('never') })
test.fail('expected failure', () => { throw new Error('fails as expected') })
test('fail passes', () => { test.fail() })
test('slow', () => { test.slow(); log.push('timeout ' + test.info().timeout) })
test.describe('skipped describe', () => {
  test.skip()
  test('in skipped describe', () => { log.push('never') })
})
test.describe('conditional', () => {
  test.skip(({ flag }) => flag, 'flag is set')
  test('conditionally skipped', () => { log.push('never') })
})
test.describe.skip('describe.skip', () => {
  test('in describe.skip', () => { log.push('never') })
})
test('info', async ({}, testInfo) => {
  testInfo.annotations.push({ type: 'issue', description: '42' })
  log.push(JSON.stringify([testInfo.title, testInfo.retry, testInfo.project.id, testInfo.workerIndex, testInfo.repeatEachIndex, testInfo.line]))
})
`,
  'serial.vt.ts': `${header}
rootTest.describe.serial('s', () => {
  rootTest('s1', () => { log.push('s1') })
  rootTest('s2', () => { throw new Error('s2 failed') })
  rootTest('s3', () => { log.push('never') })
})
rootTest('after serial', () => { log.push('after serial') })
`,
  'beforeall-fails.vt.ts': `${header}
rootTest.describe('d', () => {
  rootTest.beforeAll(() => { throw new Error('beforeAll broke') })
  rootTest.afterAll(() => { log.push('afterAll still runs') })
  rootTest('d1', () => { log.push('never') })
  rootTest('d2', () => { log.push('never') })
})
rootTest('outside', () => { log.push('outside') })
`,
  'steps.vt.ts': `${header}
const test = rootTest.extend<{ boxed: string }>({
  boxed: [async ({}, use) => { await use('b') }, { box: true }],
})
test('nested steps', async ({ boxed }) => {
  const value = await test.step('outer', async () => {
    const inner = await test.step('inner', () => 21)
    return inner * 2
  })
  log.push('value ' + value)
})
test('failing step', async () => {
  await test.step('will fail', async () => {
    expect(1).toBe(2)
  })
})
test('boxed step', async () => {
  await test.step('boxed', async () => {
    throw new Error('inside box')
  }, { box: true })
})
test('step timeout', async () => {
  await test.step('slow step', () => new Promise(r => setTimeout(r, 2000)), { timeout: 50 })
})
`,
  'timeouts.vt.ts': `${header}
const test = rootTest.extend<{ res: string; hangTeardown: string; after: string; slowBoot: string }>({
  slowBoot: async ({}, use) => {
    await new Promise(r => setTimeout(r, 300))
    log.push('booted')
    await use('vm')
    log.push('vm destroyed')
  },
  res: async ({}, use) => { log.push('res up'); await use('r'); log.push('res down') },
  hangTeardown: async ({}, use) => { await use('h'); log.push('hang teardown'); await new Promise(() => {}) },
  after: async ({}, use) => { await use('a'); log.push('after down') },
})
test('body never settles', async ({ res }) => {
  test.setTimeout(100)
  await new Promise(() => {})
})
test('teardown never settles', async ({ after, hangTeardown }) => {
  test.setTimeout(200)
})
test.describe(() => {
  test.describe.configure({ timeout: 100 })
  test('slow boot', async ({ slowBoot }) => {})
})
test('zombie', async () => {
  test.setTimeout(50)
  await new Promise(r => setTimeout(r, 150))
  await test.step('zombie step', async () => { log.push('zombie step ran') })
  expect.soft(1).toBe(2)
})
test('next test', async () => {
  await new Promise(r => setTimeout(r, 300))
  await test.step('own step', () => {})
})
test('interrupt me', async ({ res }) => {
  log.push('interruptible')
  await new Promise(() => {})
})
`,
  'attach.vt.ts': `${header}
import fs from 'node:fs'
rootTest('attaches', async ({}, testInfo) => {
  const file = testInfo.outputPath('data.txt')
  fs.writeFileSync(file, 'hello file')
  await testInfo.attach('file', { path: file })
  await testInfo.attach('inline', { body: 'hello body' })
  log.push(testInfo.outputDir)
  expect(() => testInfo.outputPath('..', 'escape')).toThrow(/outside/)
})
`,
})
after(() => removeProject(dir))

test('beforeAll/afterAll run once per describe in a group; beforeEach/afterEach around every test', async () => {
  const r = await runInProcess(dir, 'hooks.vt.ts')
  for (const t of ['first', 'second', 'third']) assert.equal(r.ends.get(t)?.status, 'passed', t)
  assert.deepEqual(log, [
    'w up',
    'beforeAll W',
    't up',
    'beforeEach T',
    'first',
    'afterEach',
    't down',
    'inner beforeAll',
    't up',
    'beforeEach T',
    'second hooks.vt.ts|inner|second',
    'afterEach',
    't down',
    'inner afterAll',
    't up',
    'beforeEach T',
    'third',
    'afterEach',
    't down',
    'afterAll',
    'w down',
  ])
  assert.deepEqual(stepLines(r, 'first'), [
    'hook: beforeAll hook',
    '  fixture: fixture: w',
    'hook: beforeEach hook',
    '  fixture: fixture: t',
    'hook: named after',
    'fixture: fixture: t',
  ])
})

test('skip, fixme, fail and slow in every form', async () => {
  const r = await runInProcess(dir, 'modifiers.vt.ts')
  const status = (t: string) => [r.ends.get(t)?.status, r.ends.get(t)?.expectedStatus]
  assert.deepEqual(status('declared skip'), ['skipped', 'skipped'])
  assert.deepEqual(status('declared fixme'), ['skipped', 'skipped'])
  assert.deepEqual(status('runtime skip'), ['skipped', 'skipped'])
  assert.deepEqual(status('runtime skip false'), ['passed', 'passed'])
  assert.deepEqual(status('runtime skip with reason'), ['skipped', 'skipped'])
  assert.deepEqual(r.ends.get('runtime skip with reason')?.annotations, [{ type: 'skip', description: 'because' }])
  assert.deepEqual(status('expected failure'), ['failed', 'failed'])
  assert.deepEqual(status('fail passes'), ['passed', 'failed'])
  assert.equal(r.ends.get('fail passes')?.errors[0].message, 'Expected to fail, but passed.')
  assert.deepEqual(status('slow'), ['passed', 'passed'])
  assert.equal(r.ends.get('slow')?.timeout, 9000)
  assert.deepEqual(status('in skipped describe'), ['skipped', 'skipped'])
  assert.deepEqual(status('conditionally skipped'), ['skipped', 'skipped'])
  assert.deepEqual(r.ends.get('conditionally skipped')?.annotations, [{ type: 'skip', description: 'flag is set' }])
  assert.deepEqual(status('in describe.skip'), ['skipped', 'skipped'])
  assert.deepEqual(r.ends.get('info')?.annotations, [{ type: 'issue', description: '42' }])
  assert.ok(!log.includes('never'), log.join(','))
  assert.ok(log.includes('ran'))
  assert.ok(log.includes('timeout 9000'))
  assert.ok(log.includes(JSON.stringify(['info', 0, 'project-0', 0, 0, 25])), log.join('\n'))
})

test('describe.serial: after a failure the rest of the serial suite is skipped', async () => {
  const r = await runInProcess(dir, 'serial.vt.ts')
  assert.equal(r.ends.get('s1')?.status, 'passed')
  assert.equal(r.ends.get('s2')?.status, 'failed')
  assert.equal(r.ends.get('s3')?.status, 'skipped')
  assert.equal(r.ends.get('after serial')?.status, 'passed')
  assert.deepEqual(log, ['s1', 'after serial'])
})

test('a failing beforeAll fails the first test and skips the rest of its describe; afterAll still runs', async () => {
  const r = await runInProcess(dir, 'beforeall-fails.vt.ts')
  assert.equal(r.ends.get('d1')?.status, 'failed')
  assert.match(r.ends.get('d1')?.errors[0].message ?? '', /beforeAll broke/)
  assert.equal(r.ends.get('d1')?.errors[0].location?.line, 6)
  assert.equal(r.ends.get('d2')?.status, 'skipped')
  assert.equal(r.ends.get('outside')?.status, 'passed')
  assert.deepEqual(log, ['afterAll still runs', 'outside'])
})

test('steps nest, return values, carry errors; box points at the step call; step timeout', async () => {
  const r = await runInProcess(dir, 'steps.vt.ts')
  assert.equal(r.ends.get('nested steps')?.status, 'passed')
  assert.deepEqual(log, ['value 42'])
  assert.deepEqual(stepLines(r, 'nested steps'), ['test.step: outer', '  test.step: inner'])
  assert.deepEqual(stepLines(r, 'failing step'), ['test.step: will fail ✘', '  expect: expect.toBe ✘'])
  const failing = r.ends.get('failing step')!
  assert.equal(failing.status, 'failed')
  assert.equal(failing.errors[0].location?.line, 17)
  assert.match(failing.errors[0].snippet ?? '', /> 17 \| +expect\(1\)\.toBe\(2\)/)
  const boxed = r.ends.get('boxed step')!
  assert.equal(boxed.errors[0].location?.line, 21)
  assert.match(boxed.errors[0].message, /inside box/)
  const timeout = r.ends.get('step timeout')!
  assert.equal(timeout.status, 'failed')
  assert.match(timeout.errors[0].message, /Step timeout of 50ms exceeded in "slow step"/)
})

test('a test that never settles times out and its fixtures are torn down; teardown has its own slot', async () => {
  const r = await runInProcess(dir, 'timeouts.vt.ts', { titles: ['body never settles', 'teardown never settles'] })
  const body = r.ends.get('body never settles')!
  assert.equal(body.status, 'timedOut')
  assert.match(body.errors[0].message, /Test timeout of 100ms exceeded/)
  const teardown = r.ends.get('teardown never settles')!
  assert.equal(teardown.status, 'timedOut')
  assert.match(teardown.errors[0].message, /"hangTeardown" .*teardown exceeded the teardown timeout of 200ms/)
  assert.deepEqual(log, ['res up', 'res down', 'hang teardown', 'after down'])
})

test('stop during a test: the test ends interrupted, fixtures are torn down, the worker reports teardown', async () => {
  const r = await runInProcess(dir, 'timeouts.vt.ts', {
    titles: ['interrupt me'],
    stopWhen: () => log.includes('interruptible'),
  })
  assert.equal(r.ends.get('interrupt me')?.status, 'interrupted')
  assert.deepEqual(log, ['res up', 'interruptible', 'res down'])
  const types = r.messages.map(m => m.type)
  assert.deepEqual(types.slice(-3), ['testEnd', 'done', 'teardownErrors'])
})

test('attachments are copied into the test output dir or sent inline', async () => {
  const r = await runInProcess(dir, 'attach.vt.ts')
  assert.equal(r.ends.get('attaches')?.status, 'passed', JSON.stringify(r.ends.get('attaches')?.errors))
  const outputDir = log[0]
  assert.ok(outputDir.startsWith(path.join(dir, 'out', 'attach-vt-attaches-')), outputDir)
  const attachments = r.messages.filter(m => m.type === 'attach')
  assert.equal(attachments.length, 2)
  const [file, inline] = attachments as Extract<(typeof r.messages)[number], { type: 'attach' }>[]
  assert.equal(file.contentType, 'text/plain')
  assert.ok(file.path?.startsWith(path.join(outputDir, 'attachments')))
  assert.equal(fs.readFileSync(file.path!, 'utf8'), 'hello file')
  assert.equal(Buffer.from(inline.body!, 'base64').toString(), 'hello body')
  assert.deepEqual(stepLines(r, 'attaches'), [
    'attach: attach "file"',
    'attach: attach "inline"',
    'expect: expect.toThrow',
  ])
})

test('code left running by a timed-out test does not report into the next test', async () => {
  const r = await runInProcess(dir, 'timeouts.vt.ts', { titles: ['zombie', 'next test'] })
  assert.equal(r.ends.get('zombie')?.status, 'timedOut')
  assert.equal(r.ends.get('next test')?.status, 'passed', JSON.stringify(r.ends.get('next test')?.errors))
  assert.deepEqual(log, ['zombie step ran'])
  assert.deepEqual(stepLines(r, 'zombie'), [])
  assert.deepEqual(stepLines(r, 'next test'), ['test.step: own step'])
})

test('a fixture whose setup outlives its test still tears down before the worker exits', async () => {
  const r = await runInProcess(dir, 'timeouts.vt.ts', { titles: ['slow boot'] })
  assert.equal(r.ends.get('slow boot')?.status, 'timedOut')
  assert.match(r.ends.get('slow boot')?.errors[0].message ?? '', /while setting up "slowBoot"/)
  assert.deepEqual(log, ['booted', 'vm destroyed'])
})
