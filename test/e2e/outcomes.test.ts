// End to end: outcomes (retries, flaky, fail/skip/fixme/slow), serial mode, hooks, steps, attachments,
// soft/poll/toPass, timeouts, output capture, code frames, exit codes, and the JUnit file.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { findAll } from '../reporters/xml.ts'
import { allTests, logHelper, project, runVt, statuses, testByPath } from './helpers.ts'

test('retries make a test flaky; --fail-on-flaky-tests fails the run', async t => {
  const p = project(t, {
    'flaky.vt.ts': `
import { test } from 'vt'
test('passes on retry', async () => {
  if (test.info().retry === 0) throw new Error('not yet')
})
test('always passes', async () => {})
`,
  })
  const r = await runVt(p, ['--retries', '1'])
  assert.equal(r.exitCode, 0, r.output)
  const flaky = testByPath(r.json, 'passes on retry')
  assert.equal(flaky.status, 'flaky')
  assert.deepEqual(statuses(flaky), ['failed', 'passed'])
  assert.deepEqual(
    flaky.results.map(x => x.retry),
    [0, 1],
  )
  assert.equal(r.json!.stats.flaky, 1)
  assert.equal(r.json!.stats.expected, 1)
  assert.match(r.stdout, /1 flaky/)

  const strict = await runVt(p, ['--retries', '1', '--fail-on-flaky-tests'])
  assert.equal(strict.exitCode, 1, strict.output)

  const noRetries = await runVt(p, [])
  assert.equal(noRetries.exitCode, 1, noRetries.output)
  assert.equal(testByPath(noRetries.json, 'passes on retry').status, 'unexpected')
})

test('test.fail, skip, fixme and slow, with and without conditions', async t => {
  const p = project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'\nexport default defineConfig({ timeout: 1000 })\n`,
    'mods.vt.ts': `
import { test, expect } from 'vt'
test.fail('known bug fails as expected', async () => { expect(1).toBe(2) })
test.fail('known bug that passes is a failure', async () => {})
test.skip('skipped by declaration', async () => { throw new Error('must not run') })
test.fixme('fixme by declaration', async () => { throw new Error('must not run') })
test('skipped inside', async () => { test.skip(true, 'not here'); throw new Error('must not run') })
test('not skipped when the condition is false', async () => { test.skip(false, 'never') })
test('slow triples the timeout', async () => { test.slow(); await new Promise(r => setTimeout(r, 1500)) })
test.describe('skipped group', () => {
  test.skip(() => true, 'whole group')
  test('inside skipped group', async () => { throw new Error('must not run') })
})
`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  const status = (title: string) => testByPath(r.json, title).status
  assert.equal(status('known bug fails as expected'), 'expected')
  assert.equal(testByPath(r.json, 'known bug fails as expected').expectedStatus, 'failed')
  assert.equal(status('known bug that passes is a failure'), 'unexpected')
  assert.equal(status('skipped by declaration'), 'skipped')
  assert.equal(status('fixme by declaration'), 'skipped')
  assert.ok(testByPath(r.json, 'fixme by declaration').annotations.some(a => a.type === 'fixme'))
  const inside = testByPath(r.json, 'skipped inside')
  assert.equal(inside.status, 'skipped')
  assert.ok(
    [...inside.annotations, ...inside.results.flatMap(x => x.annotations)].some(
      a => a.type === 'skip' && a.description === 'not here',
    ),
  )
  assert.equal(status('not skipped when the condition is false'), 'expected')
  assert.equal(status('slow triples the timeout'), 'expected')
  assert.equal(status('inside skipped group'), 'skipped')
  const messages = allTests(r.json).flatMap(x => x.results.flatMap(res => res.errors.map(e => e.message)))
  assert.ok(!messages.some(m => m.includes('must not run')), messages.join('\n'))
  assert.equal(r.json!.stats.unexpected, 1)
})

test('describe.serial stops the group at the first failure; beforeAll/afterAll run once around the tests', async t => {
  const p = project(t, {
    'serial.vt.ts': `
import { test } from 'vt'
${logHelper}
test.describe.serial('steps of a story', () => {
  test.beforeAll(async () => log('beforeAll'))
  test.afterAll(async () => log('afterAll'))
  test.beforeEach(async ({}, info) => log('beforeEach ' + info.title))
  test.afterEach(async ({}, info) => log('afterEach ' + info.title))
  test('one', async () => log('one'))
  test('two', async () => { log('two'); throw new Error('two broke') })
  test('three', async () => log('three'))
})
`,
  })
  const r = await runVt(p, ['-j', '1'])
  assert.equal(r.exitCode, 1, r.output)
  assert.deepEqual(p.log(), [
    'beforeAll',
    'beforeEach one',
    'one',
    'afterEach one',
    'beforeEach two',
    'two',
    'afterEach two',
    'afterAll',
  ])
  assert.equal(testByPath(r.json, 'one').status, 'expected')
  assert.equal(testByPath(r.json, 'two').status, 'unexpected')
  const three = testByPath(r.json, 'three')
  assert.ok(
    three.results.every(x => x.status === 'skipped'),
    `three must not run: ${JSON.stringify(three.results)}`,
  )
})

test('serial groups retry as a whole', async t => {
  const p = project(t, {
    'serial.vt.ts': `
import { test } from 'vt'
${logHelper}
test.describe.serial('story', () => {
  test('first', async () => log('first ' + test.info().retry))
  test('second', async () => { log('second ' + test.info().retry); if (test.info().retry === 0) throw new Error('once') })
})
`,
  })
  const r = await runVt(p, ['-j', '1', '--retries', '1'])
  assert.equal(r.exitCode, 0, r.output)
  assert.deepEqual(p.log(), ['first 0', 'second 0', 'first 1', 'second 1'])
  assert.equal(testByPath(r.json, 'second').status, 'flaky')
})

test('steps, attachments, stdout and code frames reach the JSON and JUnit reports', async t => {
  const p = project(t, {
    'report.vt.ts': `
import { writeFileSync } from 'node:fs'
import { test, expect } from 'vt'
test('with steps and attachments', async () => {
  console.log('hello from the test')
  console.error('a warning')
  await test.step('outer', async () => {
    await test.step('inner', async () => {})
  })
  await test.info().attach('note', { body: 'some text', contentType: 'text/plain' })
  const file = test.info().outputPath('data.bin')
  writeFileSync(file, 'bytes')
  await test.info().attach('data', { path: file, contentType: 'application/octet-stream' })
})
test('fails in a step', async () => {
  await test.step('checking', async () => {
    expect(2 + 2).toBe(5)
  })
})
`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  const ok = testByPath(r.json, 'with steps and attachments')
  const result = ok.results[0]
  const userSteps = (steps: any[]): any[] =>
    steps.filter(s => s.category === 'test.step').map(s => ({ title: s.title, steps: userSteps(s.steps ?? []) }))
  assert.deepEqual(userSteps(result.steps), [{ title: 'outer', steps: [{ title: 'inner', steps: [] }] }])
  assert.deepEqual(
    result.stdout.map(x => ('text' in x ? x.text : Buffer.from(x.buffer, 'base64').toString())).join(''),
    'hello from the test\n',
  )
  assert.match(JSON.stringify(result.stderr), /a warning/)
  const note = result.attachments.find(a => a.name === 'note')!
  assert.equal(Buffer.from(note.body!, 'base64').toString(), 'some text')
  const data = result.attachments.find(a => a.name === 'data')!
  assert.ok(data.path && p.read(data.path.startsWith('/') ? data.path.slice(p.dir.length + 1) : data.path) === 'bytes')

  const failed = testByPath(r.json, 'fails in a step').results[0]
  const error = failed.errors[0]
  assert.match(error.message, /toBe/)
  assert.match(error.message, /Expected: 5/)
  assert.deepEqual(error.location && { file: error.location.file, line: error.location.line }, {
    file: 'report.vt.ts',
    line: 17,
  })
  assert.match(error.snippet ?? '', />\s*17 \|\s+expect\(2 \+ 2\)\.toBe\(5\)/)
  const checking = failed.steps.find(s => s.title === 'checking')
  assert.ok(checking?.error, 'the failing step carries the error')
  // terminal output: code frame at the spec line, no runner internals in the stack
  assert.match(r.stdout, /> 17 \|/)
  assert.match(r.stdout, /report\.vt\.ts:17:/)
  assert.doesNotMatch(r.stdout, /node_modules|node:internal/)

  // JUnit: the file is well-formed (parsed by the helper) and says what happened
  const root = r.junit!
  assert.equal(root.attributes.tests, '2')
  assert.equal(root.attributes.failures, '1')
  const cases = findAll(root, 'testcase')
  const failing = cases.find(c => c.attributes.name === 'fails in a step')!
  assert.equal(failing.attributes.classname, 'report.vt.ts')
  assert.match(findAll(failing, 'failure')[0].attributes.message, /report\.vt\.ts:\d+:\d+ .*toBe/)
  const passing = cases.find(c => c.attributes.name === 'with steps and attachments')!
  const out = findAll(passing, 'system-out')[0].text
  assert.match(out, /hello from the test/)
  assert.equal([...out.matchAll(/\[\[ATTACHMENT\|[^\]]+\]\]/g)].length, 2)
  assert.match(findAll(passing, 'system-err')[0].text, /a warning/)
})

test('expect.soft collects failures, expect.poll and toPass retry until they pass', async t => {
  const p = project(t, {
    'expect.vt.ts': `
import { test, expect } from 'vt'
test('soft', async () => {
  expect.soft(1).toBe(2)
  expect.soft('a').toBe('b')
  test.info().annotations.push({ type: 'reached', description: 'end of body' })
})
test('poll', async () => {
  let n = 0
  await expect.poll(() => ++n, { intervals: [10], timeout: 2000 }).toBe(3)
})
test('toPass', async () => {
  let n = 0
  await expect(async () => { n++; expect(n).toBeGreaterThan(2) }).toPass({ intervals: [10], timeout: 2000 })
})
test('poll times out', async () => {
  await expect.poll(() => 1, { intervals: [10], timeout: 200 }).toBe(2)
})
`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  const soft = testByPath(r.json, 'soft')
  assert.equal(soft.results[0].status, 'failed')
  assert.equal(soft.results[0].errors.length, 2)
  assert.ok(
    [...soft.annotations, ...soft.results[0].annotations].some(a => a.type === 'reached'),
    'soft failures do not stop the test',
  )
  assert.equal(testByPath(r.json, 'poll').status, 'expected')
  assert.equal(testByPath(r.json, 'toPass').status, 'expected')
  const timedOutPoll = testByPath(r.json, 'poll times out')
  assert.equal(timedOutPoll.status, 'unexpected')
  assert.match(timedOutPoll.results[0].errors[0].message, /200ms|timeout|Timeout/)
})

test('exit codes: 0 when all pass, 1 on failure, no tests is an error unless --pass-with-no-tests', async t => {
  const p = project(t, { 'a.vt.ts': `import { test } from 'vt'\ntest('ok', async () => {})\n` })
  assert.equal((await runVt(p, [])).exitCode, 0)
  const none = await runVt(p, ['-g', 'nothing matches this'])
  assert.equal(none.exitCode, 1, none.output)
  assert.match(none.output, /no tests found/i)
  assert.equal((await runVt(p, ['-g', 'nothing matches this', '--pass-with-no-tests'])).exitCode, 0)
})

test('the list reporter prints a line per test and the summary', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'\ntest.describe('group', () => {\n  test('ok', async () => {})\n  test('bad', async () => { throw new Error('bad thing') })\n})\ntest.skip('later', async () => {})\n`,
  })
  const r = await runVt(p, ['-j', '1'])
  assert.equal(r.exitCode, 1)
  assert.match(r.stdout, /Running 3 tests using 1 worker/)
  assert.match(r.stdout, /✓ +\d a\.vt\.ts:3:3 › group › ok \(\d+ms\)/)
  assert.match(r.stdout, /✘ +\d a\.vt\.ts:4:3 › group › bad \(\d+ms\)/)
  assert.match(r.stdout, /- +\d a\.vt\.ts:6:\d+ › later/)
  assert.match(r.stdout, /1\) a\.vt\.ts:4:3 › group › bad/)
  assert.match(r.stdout, /Error: bad thing/)
  assert.match(r.stdout, /1 passed, 1 failed, 1 skipped \(\d/)
  assert.equal(allTests(r.json).length, 3)
})

test('the default reporter is list locally and dot under CI; the config can choose', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'\ntest('one', async () => {})\ntest('two', async () => {})\n`,
  })
  const local = await runVt(p, [], { noReporterFlag: true, env: { CI: '' } })
  assert.equal(local.exitCode, 0, local.output)
  assert.match(local.stdout, /✓ +1 a\.vt\.ts:2:1 › one/)
  const ci = await runVt(p, [], { noReporterFlag: true, env: { CI: 'true' } })
  assert.equal(ci.exitCode, 0, ci.output)
  assert.match(ci.stdout, /^··$/m)
  assert.doesNotMatch(ci.stdout, /✓/)
  p.write({
    'vt.config.ts': `import { defineConfig } from 'vt'\nexport default defineConfig({ reporter: [['junit', { outputFile: 'out/j.xml' }], ['line']] })\n`,
  })
  const configured = await runVt(p, [], { noReporterFlag: true, env: { CI: 'true' } })
  assert.equal(configured.exitCode, 0, configured.output)
  assert.match(configured.stdout, /\[2\/2\]/)
  assert.match(p.read('out/j.xml'), /<testsuites name="vt" tests="2" failures="0" skipped="0" errors="0"/)
})

test('--timeout and --global-timeout', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'\ntest('slow', async () => { await new Promise(r => setTimeout(r, 30_000)) })\n`,
  })
  const r = await runVt(p, ['--timeout', '300'])
  assert.equal(r.exitCode, 1, r.output)
  const slow = testByPath(r.json, 'slow')
  assert.equal(slow.results[0].status, 'timedOut')
  assert.match(slow.results[0].errors[0].message, /300ms/)
  const global = await runVt(p, ['--global-timeout', '500'])
  assert.equal(global.exitCode, 1, global.output)
  assert.equal(global.json!.stats.status, 'timedout')
  assert.ok(global.durationMs < 20_000, `global timeout stops the run early (${global.durationMs}ms)`)
})
