// End to end: test.prop through the real `vt` binary. Fresh test fixtures per run, shrinking to the minimal
// counterexample, the replay command printed in the error really replays it, seeds from --seed, test.use, the
// config and the property's options (in that order), --repeat-each moves the seed, the seed is printed and
// reported (JSON annotations, JUnit properties) also when the property holds, and bad input is an error at file:line.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { findAll } from '../reporters/xml.ts'
import { allTests, project, runVt, testByPath } from './helpers.ts'

const fixtureSpec = `
import { appendFileSync } from 'node:fs'
import { expect, fc, test as base } from 'vt'
const log = (s: string) => appendFileSync('log.txt', s + '\\n')
const test = base.extend<{ counter: { n: number } }>({
  counter: async ({}, use) => { log('setup'); await use({ n: 0 }); log('teardown') },
})
test.prop({ x: fc.nat(1000), ys: fc.array(fc.nat(10)) }, { numRuns: 200 })('x stays small', async ({ counter }, { x }) => {
  counter.n++
  expect(counter.n).toBe(1)
  expect(x).toBeLessThan(50)
})
test.prop([fc.nat()], { numRuns: 20 })('always holds', async ({}, [n]) => {
  expect(n).toBeGreaterThanOrEqual(0)
})
`

function annotation(t: { results: { annotations?: { type: string; description?: string }[] }[] }, type: string) {
  return t.results.at(-1)?.annotations?.find(a => a.type === type)?.description
}

test('a failing property shrinks, names seed, path and counterexample, and its printed command replays it', async t => {
  const p = project(t, { 'a.vt.ts': fixtureSpec })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  const failing = testByPath(r.json, 'x stays small')
  const message = failing.results[0].errors[0].message ?? ''
  assert.match(message, /Property failed after \d+ runs?, shrunk \d+ times? \(seed -?\d+, path [\d:]+\)/)
  assert.match(message, /Counterexample:\n {2}x:\n {4}50\n {2}ys:\n {4}\[\]/)
  assert.match(message, /Expected: < 50/)
  // Every run got its own fixture, torn down before the next (counter.n is 1 in each run).
  const log = p.log()
  assert.ok(log.length >= 4, log.join())
  assert.deepEqual(
    log,
    log.map((_, i) => (i % 2 ? 'teardown' : 'setup')),
  )
  // Steps: the runs, then one "shrinking" step holding the attempts.
  const steps = failing.results[0].steps.map(s => s.title)
  assert.equal(steps[0], 'run 1')
  assert.equal(steps.at(-1), 'shrinking')
  // Seed, path, counterexample and the replay command in the JSON report and as JUnit properties.
  const seed = annotation(failing, 'seed')
  const replay = annotation(failing, 'replay') ?? ''
  assert.match(seed ?? '', /^-?\d+$/)
  assert.match(replay, new RegExp(`^npx vt test a\\.vt\\.ts:8 --seed ${seed} --path [\\d:]+$`))
  assert.match(annotation(failing, 'counterexample') ?? '', /x:\n {4}50/)
  assert.ok(message.includes(`Replay: ${replay}`))
  const props = findAll(r.junit!, 'property').map(e => `${e.attributes.name}=${e.attributes.value}`)
  assert.ok(props.includes(`seed=${seed}`), props.join('\n'))
  assert.ok(props.some(x => x.startsWith('counterexample=')))
  // The passing property printed its seed too.
  assert.match(
    r.stdout,
    /property "always holds": 20 runs passed \(seed -?\d+; replay: npx vt test a\.vt\.ts:13 --seed -?\d+\)/,
  )
  assert.match(annotation(testByPath(r.json, 'always holds'), 'seed') ?? '', /^-?\d+$/)

  // The printed command replays exactly that case: one failing run, the same counterexample.
  const args = replay.split(' ').slice(3)
  p.write({ 'log.txt': '' })
  const again = await runVt(p, args)
  assert.equal(again.exitCode, 1, again.output)
  assert.equal(allTests(again.json).length, 1)
  const replayed = testByPath(again.json, 'x stays small')
  assert.match(replayed.results[0].errors[0].message ?? '', /Property failed after 1 run/)
  assert.match(replayed.results[0].errors[0].message ?? '', /Counterexample:\n {2}x:\n {4}50\n {2}ys:\n {4}\[\]/)
  assert.equal(annotation(replayed, 'seed'), seed)
})

test('seeds: --seed beats the option, which beats test.use, which beats the config; --repeat-each moves it', async t => {
  const p = project(t, {
    'vt.config.ts': "import { defineConfig } from 'vt'\nexport default defineConfig({ seed: 11 })\n",
    's.vt.ts': `
import { fc, test } from 'vt'
test.prop([fc.nat()], { numRuns: 3 })('from config', async () => {})
test.prop([fc.nat()], { numRuns: 3, seed: 33 })('from option', async () => {})
test.describe('used', () => {
  test.use({ seed: 22 })
  test.prop([fc.nat()], { numRuns: 3 })('from use', async () => {})
})
`,
  })
  const seeds = (r: Awaited<ReturnType<typeof runVt>>) =>
    allTests(r.json).map(
      x => `${x.title}:${x.results.map(res => res.annotations?.find(a => a.type === 'seed')?.description).join('/')}`,
    )
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 0, r.output)
  assert.deepEqual(seeds(r).sort(), ['from config:11', 'from option:33', 'from use:22'])
  const forced = await runVt(p, ['--seed', '-7', '--repeat-each', '2'])
  assert.equal(forced.exitCode, 0, forced.output)
  assert.deepEqual(seeds(forced).sort(), [
    'from config:-6',
    'from config:-7',
    'from option:-6',
    'from option:-7',
    'from use:-6',
    'from use:-7',
  ])
  assert.match(
    forced.stdout,
    /property "from use": 3 runs passed \(seed -6; replay: npx vt test s\.vt\.ts:7 --seed -6\)/,
  )
  // Without any fixed seed, repetitions get different random seeds.
  p.write({ 'vt.config.ts': "import { defineConfig } from 'vt'\nexport default defineConfig({})\n" })
  const random = await runVt(p, ['--repeat-each', '2', '-g', 'from config'])
  const [a, b] = seeds(random)[0].split(':')[1].split('/')
  assert.notEqual(a, b)
})

test('bad property declarations, seeds and flags are errors naming file:line', async t => {
  const p = project(t, {
    'bad.vt.ts': `
import { fc, test } from 'vt'
test.prop({ n: fc.nat() }, { numRuns: 0 })('bad runs', async () => {})
`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  assert.match(r.output, /test\.prop\(\): numRuns must be an integer >= 1, got 0 \(at .*bad\.vt\.ts:3:6\)/)
  p.write({
    'bad.vt.ts': `
import { test } from 'vt'
test.prop({ n: 42 } as never)('not an arbitrary', async () => {})
`,
  })
  assert.match((await runVt(p, [])).output, /arbitrary n is not a fast-check Arbitrary .*bad\.vt\.ts:3:6/)
  p.write({
    'bad.vt.ts': `
import { fc, test } from 'vt'
test.use({ seed: 'x' as never })
test.prop([fc.nat()], { path: '1:2' })('path without seed', async () => {})
`,
  })
  assert.match((await runVt(p, [])).output, /test\.use\(\): seed must be an integer, got "x" \(at .*bad\.vt\.ts:3:6\)/)
  p.write({
    'bad.vt.ts': "import { fc, test } from 'vt'\ntest.prop([fc.nat()], { path: '1:2' })('t', async () => {})\n",
    'vt.config.ts': "import { defineConfig } from 'vt'\nexport default defineConfig({\n  seed: 1.5,\n})\n",
  })
  const config = await runVt(p, [])
  assert.equal(config.exitCode, 1)
  assert.match(config.output, /vt\.config\.ts:3: seed: expected int/)
  p.write({ 'vt.config.ts': "import { defineConfig } from 'vt'\nexport default defineConfig({})\n" })
  assert.match((await runVt(p, [])).output, /path replays a run of one seed: give seed too \(at .*bad\.vt\.ts:2:6\)/)
  const flag = await runVt(p, ['--path', '1:2'])
  assert.equal(flag.exitCode, 1)
  assert.match(flag.output, /--path replays a run of one seed: give --seed too/)
  assert.match((await runVt(p, ['--seed', 'abc'])).output, /--seed <n>' argument 'abc' is invalid/)
})

test('timeouts: one run over its timeout fails and shrinks; the whole property over totalTimeout fails', async t => {
  const p = project(t, {
    't.vt.ts': `
import { fc, test } from 'vt'
test.prop([fc.nat(3)], { numRuns: 20, timeout: 300 })('slow run', async ({}, [n]) => {
  if (n >= 2) await new Promise(r => setTimeout(r, 3000))
})
test.prop([fc.nat()], { numRuns: 1000, totalTimeout: 500 })('endless', async () => {
  await new Promise(r => setTimeout(r, 50))
})
`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  const slow = testByPath(r.json, 'slow run').results[0].errors[0].message ?? ''
  assert.match(slow, /Counterexample:\n {2}\[0\]:\n {4}2\n/)
  assert.match(slow, /Timeout: Property (run|shrink attempt) \d+ exceeded its timeout of 300ms/)
  const endless = testByPath(r.json, 'endless').results[0].errors[0].message ?? ''
  assert.match(endless, /Property did not finish within its totalTimeout of 500ms: \d+ of 1000 runs passed/)
})
