import assert from 'node:assert/strict'
import { after, beforeEach, test } from 'node:test'
import { expect } from '../../src/expect/index.ts'
import { runInProcess, stepLines } from './harness.ts'
import { removeProject, writeProject } from './helpers.ts'

const log: string[] = []
;(globalThis as any).__vtLog = log
beforeEach(() => {
  log.length = 0
})

const dir = writeProject({
  'vt.config.ts': `export default { timeout: 5000, reuseWorkerAfterFailure: true, expect: { timeout: 1000 } }\n`,
  'e.vt.ts': `import { rootTest as test } from '$TEST'
import { expect } from '$EXPECT'
const log = (globalThis as any).__vtLog as string[]

test('soft', async () => {
  expect.soft(1).toBe(2)
  expect.soft('a').not.toBe('a')
  await expect.soft(Promise.resolve(3)).resolves.toBe(4)
  log.push('continued')
})
test('poll passes', async () => {
  const start = Date.now()
  await expect.poll(() => Date.now() - start > 150, { intervals: [20] }).toBe(true)
  await expect.poll(async () => 'x').not.toBe('y')
  log.push('polled')
})
test('poll fails', async () => {
  let n = 0
  await expect.poll(() => ++n, { message: 'counter never reaches 1000', intervals: [50] }).toBe(1000)
})
test('toPass passes', async () => {
  let attempts = 0
  await expect(async () => {
    attempts++
    expect(attempts).toBeGreaterThan(2)
  }).toPass({ intervals: [10] })
  log.push('attempts ' + attempts)
})
test('toPass fails', async () => {
  await expect(() => {
    expect('left').toBe('right')
  }).toPass({ timeout: 200, intervals: [50] })
})
test('custom message', async () => {
  expect(1, 'one is not two').toBe(2)
})
`,
})
after(() => removeProject(dir))

test('expect.soft records failures and lets the test continue', async () => {
  const r = await runInProcess(dir, 'e.vt.ts', { titles: ['soft'] })
  const end = r.ends.get('soft')!
  assert.equal(end.status, 'failed')
  assert.deepEqual(log, ['continued'])
  assert.equal(end.errors.length, 3)
  assert.deepEqual(
    end.errors.map(e => e.location?.line),
    [6, 7, 8],
  )
  assert.match(end.errors[0].message, /Expected: 2/)
  assert.deepEqual(stepLines(r, 'soft'), [
    'expect: expect.soft.toBe ✘',
    'expect: expect.soft.not.toBe ✘',
    'expect: expect.soft.resolves.toBe ✘',
  ])
  const step = r.messages.find(m => m.type === 'stepBegin')
  assert.ok(step?.type === 'stepBegin')
  assert.equal(step.location?.line, 6)
})

test('expect.poll retries until the matcher passes, fails with the last error after the expect timeout', async () => {
  const r = await runInProcess(dir, 'e.vt.ts', { titles: ['poll passes', 'poll fails'] })
  assert.equal(r.ends.get('poll passes')?.status, 'passed', JSON.stringify(r.ends.get('poll passes')?.errors))
  assert.deepEqual(log, ['polled'])
  assert.deepEqual(stepLines(r, 'poll passes'), ['expect: expect.poll.toBe', 'expect: expect.poll.not.toBe'])
  const failed = r.ends.get('poll fails')!
  assert.equal(failed.status, 'failed')
  const error = failed.errors[0]
  assert.match(error.message, /^counter never reaches 1000\n\nexpect\.poll: timeout 1000ms exceeded\./)
  assert.match(error.message, /Expected: 1000/)
  assert.equal(error.location?.line, 19)
  assert.match(error.snippet ?? '', /> 19 \|/)
})

test('toPass retries a block; on timeout it reports the last failure at the call site', async () => {
  const r = await runInProcess(dir, 'e.vt.ts', { titles: ['toPass passes', 'toPass fails'] })
  assert.equal(r.ends.get('toPass passes')?.status, 'passed', JSON.stringify(r.ends.get('toPass passes')?.errors))
  assert.deepEqual(log, ['attempts 3'])
  const error = r.ends.get('toPass fails')!.errors[0]
  assert.match(error.message, /toPass: timeout 200ms exceeded/)
  assert.match(error.message, /Expected: "right"/)
  assert.equal(error.location?.line, 32)
})

test('expect(value, message) puts the message first', async () => {
  const r = await runInProcess(dir, 'e.vt.ts', { titles: ['custom message'] })
  const error = r.ends.get('custom message')!.errors[0]
  assert.match(error.message, /^one is not two\n\n/)
  assert.equal(error.location?.line, 35)
})

test('types: poll and toPass return promises; matchers work outside tests', async () => {
  // Type-level: these lines fail typechecking if poll/toPass stop returning promises.
  type PollResult = ReturnType<ReturnType<typeof expect.poll<number>>['toBe']>
  type ToPassResult = ReturnType<ReturnType<typeof expect>['toPass']>
  type IsPromise<T> = 0 extends 1 & T ? false : [T] extends [Promise<void>] ? true : false
  const pollIsPromise: IsPromise<PollResult> = true
  const toPassIsPromise: IsPromise<ToPassResult> = true
  assert.ok(pollIsPromise && toPassIsPromise)
  await expect.poll(() => 1, { timeout: 100 }).toBe(1)
  await expect(() => {}).toPass({ timeout: 100 })
  expect(() => expect.soft(1).toBe(2)).toThrow(/Expected: 2/)
  await assert.rejects(async () => {
    await expect.poll(() => 1, { timeout: 100, intervals: [10] }).toBe(2)
  }, /expect\.poll: timeout 100ms/)
})
