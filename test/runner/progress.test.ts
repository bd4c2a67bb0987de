// Progress reports in the worker: checked (the bad field named), percent derived from bytes, throttled per step
// with the last held-back report still sent, and nothing sent for a step that ended; the list reporter's rule
// for sparse log lines.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SparseProgress } from '../../reporters/progress.ts'
import type { Progress } from '../../src/runner/reporterApi.ts'
import { normalizeProgress, ProgressThrottle } from '../../src/runner/worker/progress.ts'

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise(r => setTimeout(r, 10))
}

test('progress: checked, percent from bytes', () => {
  assert.deepEqual(normalizeProgress({ bytes: 256, totalBytes: 1024 }), { percent: 25, bytes: 256, totalBytes: 1024 })
  assert.deepEqual(normalizeProgress({ percent: 12.5, message: 'copying' }), { message: 'copying', percent: 12.5 })
  assert.deepEqual(normalizeProgress({ bytes: 10 }), { bytes: 10 })
  assert.deepEqual(normalizeProgress({}), {})
  assert.throws(() => normalizeProgress({ percent: Number.NaN }), /progress: percent must be a number from 0 to 100/)
  assert.throws(() => normalizeProgress({ totalBytes: -5 }), /progress: totalBytes must be a number >= 0, got -5/)
  assert.throws(() => normalizeProgress({ message: 42 as unknown as string }), /progress: message must be a string/)
  assert.throws(() => normalizeProgress(null as unknown as Progress), /progress: expected \{ message\?, percent\?/)
})

test('progress: one report per interval and step, a new message at once, the last one not lost', async () => {
  const sent: [string | undefined, Progress][] = []
  const throttle = new ProgressThrottle((step, p) => sent.push([step, p]), 100)
  throttle.report('s1', { percent: 1 })
  throttle.report('s1', { percent: 2 })
  throttle.report('s1', { percent: 3 })
  throttle.report(undefined, { percent: 50 })
  throttle.report('s1', { message: 'verifying' })
  // Sent at once: the first of s1, the first of the test itself, the new message of s1.
  assert.deepEqual(sent, [
    ['s1', { percent: 1 }],
    [undefined, { percent: 50 }],
    ['s1', { message: 'verifying' }],
  ])
  throttle.report('s1', { message: 'verifying', percent: 99 })
  await until(() => sent.length === 4)
  assert.deepEqual(sent[3], ['s1', { message: 'verifying', percent: 99 }], 'the held-back report follows')
  throttle.report('s2', { percent: 1 })
  throttle.report('s2', { percent: 2 })
  throttle.forget('s2')
  await new Promise(r => setTimeout(r, 250))
  assert.deepEqual(
    sent.map(([s]) => s),
    ['s1', undefined, 's1', 's1', 's2'],
    'nothing more for a step that ended',
  )
})

test('progress: a log gets a line for a new message, each quarter, else every 30 s', () => {
  const sparse = new SparseProgress()
  const at = (ms: number, p: Progress) => sparse.shouldPrint('step', p, ms)
  assert.equal(at(0, { message: 'copying', percent: 0 }), true)
  assert.equal(at(100, { message: 'copying', percent: 10 }), false)
  assert.equal(at(200, { message: 'copying', percent: 26 }), true)
  assert.equal(at(300, { message: 'copying', percent: 40 }), false)
  assert.equal(at(400, { message: 'verifying', percent: 40 }), true)
  assert.equal(at(30_399, { percent: 41 }), false)
  assert.equal(at(30_400, { percent: 41 }), true)
  sparse.forget('step')
  assert.equal(at(30_500, { percent: 41 }), true, 'a step seen again after forget starts afresh')
})
