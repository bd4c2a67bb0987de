// End to end: whatever a test, hook or fixture throws (an Error whose cause loops, a null-prototype object,
// a plain object, primitives, undefined) becomes a readable failure at once: no worker crashes (a crash
// shows as "worker process exited") and nothing waits for the test timeout.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { project, runVt, testByPath } from './helpers.ts'

test('odd thrown values fail their test with a readable message, never crash the worker nor wait for the timeout', async t => {
  const p = project(t, {
    'vt.config.ts': "import { defineConfig } from 'vt'\nexport default defineConfig({ timeout: 30_000, workers: 1 })\n",
    'thrown.vt.ts': `
import { test } from 'vt'
test('self cause', () => { const e: any = new Error('selfish'); e.cause = e; throw e })
test('three cycle', () => {
  const a: any = new Error('first')
  a.cause = new Error('second', { cause: new Error('third', { cause: a }) })
  throw a
})
test('null prototype', () => { throw Object.assign(Object.create(null), { why: 'np' }) })
test('plain object', () => { throw { code: 'E_PLAIN', detail: { deep: true } } })
test('undefined', () => { throw undefined })
test('number', () => { throw 42 })
const it = test.extend<{ bad: number; badTeardown: number }>({
  bad: async ({}, use) => { throw Object.assign(Object.create(null), { why: 'fixture' }) },
  badTeardown: async ({}, use) => { await use(1); throw Object.assign(Object.create(null), { why: 'teardown' }) },
})
it('null prototype from a fixture', ({ bad }) => {})
it('null prototype from a fixture teardown', ({ badTeardown }) => {})
test.describe('hook', () => {
  test.beforeEach(() => { const e: any = new Error('hook loop'); e.cause = e; throw e })
  test('behind a looping hook', () => {})
})
test('still runs after them', () => {})
`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  assert.doesNotMatch(r.output, /Maximum call stack|Cannot convert object to primitive|\[object Object\]/)
  assert.doesNotMatch(r.output, /worker process exited/)
  const failure = (title: string) => {
    const result = testByPath(r.json, title).results[0]
    // 'failed', not 'timedOut': nothing waited for the test timeout.
    assert.equal(result.status, 'failed', `${title}: ${result.status}`)
    return result.errors.map(e => `${e.message}\n${e.stack ?? ''}`).join('\n')
  }
  const self = failure('self cause')
  assert.match(self, /^selfish/)
  assert.match(self, /\[cause\]: \(cycle: the cause chain leads back to an error shown above\)/)
  const three = failure('three cycle')
  assert.match(three, /\[cause\]: Error: second[\s\S]*\[cause\]: Error: third[\s\S]*\[cause\]: \(cycle/)
  assert.match(failure('null prototype'), /thrown value: \[Object: null prototype\] \{ why: 'np' \}/)
  assert.match(failure('plain object'), /thrown value: \{ code: 'E_PLAIN', detail: \{ deep: true \} \}/)
  assert.match(failure('undefined'), /thrown value: undefined/)
  assert.match(failure('number'), /thrown value: 42/)
  assert.match(
    failure('null prototype from a fixture'),
    /Fixture "bad" .* failed during setup: thrown value: \[Object: null prototype\] \{ why: 'fixture' \}/,
  )
  assert.match(
    failure('null prototype from a fixture teardown'),
    /Fixture "badTeardown" .* failed during teardown: thrown value: \[Object: null prototype\] \{ why: 'teardown' \}/,
  )
  assert.match(failure('behind a looping hook'), /hook loop[\s\S]*\[cause\]: \(cycle/)
  assert.equal(testByPath(r.json, 'still runs after them').status, 'expected')
  // The human-readable reporter shows the same text.
  assert.match(r.stdout, /thrown value: \[Object: null prototype\] \{ why: 'np' \}/)
})

test('globalSetup and a spec file that throw a null-prototype object name the file', async t => {
  const p = project(t, {
    'vt.config.ts': "import { defineConfig } from 'vt'\nexport default defineConfig({ globalSetup: './setup.ts' })\n",
    'setup.ts': 'export default () => { throw Object.assign(Object.create(null), { setup: 1 }) }\n',
    'a.vt.ts': "import { test } from 'vt'\ntest('a', () => {})\n",
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  assert.match(r.output, /Error in globalSetup \(.*setup\.ts\): \[Object: null prototype\] \{ setup: 1 \}/)

  const q = project(t, {
    'load.vt.ts': "import { test } from 'vt'\nthrow Object.assign(Object.create(null), { load: 1 })\n",
  })
  const l = await runVt(q, [])
  assert.equal(l.exitCode, 1, l.output)
  assert.match(
    l.output,
    /Error while loading .*load\.vt\.ts:\d+:\d+: thrown value: \[Object: null prototype\] \{ load: 1 \}/,
  )
})
