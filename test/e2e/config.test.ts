// End to end: fixture errors found at load time, fullyParallel, projects and their dependencies,
// globalSetup/globalTeardown, custom reporters, and the list reporter on a real terminal.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { allTests, bothWorkers, logHelper, project, runVt, testByPath, vtBin } from './helpers.ts'

test('fixture mistakes are load-time errors with file:line', async t => {
  const p = project(t, {
    'unknown.vt.ts': `import { test } from 'vt'\n\ntest('uses a typo', async ({ nosuch }: any) => {})\n`,
    'cycle.vt.ts': `import { test as base } from 'vt'
const test = base.extend<{ a: number; b: number }>({
  a: async ({ b }, use) => use(b),
  b: async ({ a }, use) => use(a),
})
test('cycles', async ({ a }) => {})
`,
    'scope.vt.ts': `import { test as base } from 'vt'
const test = base.extend<{ perTest: number }, { perWorker: number }>({
  perTest: async ({}, use) => use(1),
  perWorker: [async ({ perTest }: any, use) => use(perTest), { scope: 'worker' }],
})
test('worker needs test', async ({ perWorker }) => {})
`,
    'fine.vt.ts': `import { test } from 'vt'\ntest('fine', async () => {})\n`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  assert.match(r.output, /nosuch/)
  assert.match(r.output, /unknown\.vt\.ts:3/)
  assert.match(r.output, /cycle/i)
  assert.match(r.output, /cycle\.vt\.ts:\d/)
  assert.match(r.output, /perWorker[\s\S]*perTest|perTest[\s\S]*perWorker/)
  assert.match(r.output, /scope\.vt\.ts:\d/)
  assert.equal(testByPath(r.json, 'fine').status, 'expected')
  const ran = allTests(r.json).filter(x => x.results.some(res => res.status !== 'skipped'))
  assert.deepEqual(
    ran.map(x => x.title),
    ['fine'],
    'tests with broken fixtures do not run',
  )
})

test('fullyParallel spreads the tests of one file over the workers', async t => {
  const p = project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'\nexport default defineConfig({ fullyParallel: true })\n`,
    'a.vt.ts': `import { test } from 'vt'
${bothWorkers}
for (let i = 0; i < 4; i++) test('t' + i, async () => bothWorkers(test.info().parallelIndex))
`,
  })
  const r = await runVt(p, ['-j', '2'])
  assert.equal(r.exitCode, 0, r.output)
  const workers = new Set(allTests(r.json).map(x => x.results[0].parallelIndex))
  assert.deepEqual([...workers].sort(), [0, 1])
})

test('projects: each runs the specs with its own use and options; dependencies run first and gate', async t => {
  const p = project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'
export default defineConfig({
  projects: [
    { name: 'setup', testMatch: /setup\\.vt\\.ts/ },
    { name: 'small', use: { size: 1 }, dependencies: ['setup'], testIgnore: /setup/ },
    { name: 'large', use: { size: 100 }, dependencies: ['setup'], testIgnore: /setup/ },
  ],
})
`,
    'fixtures.ts': `import { test as base } from 'vt'\nexport const test = base.extend<{ size: number }>({ size: [0, { option: true }] })\n`,
    'setup.vt.ts': `import { test } from 'vt'\n${logHelper}\ntest('prepare', async () => { log('setup ran') })\n`,
    'size.vt.ts': `import { test } from './fixtures.ts'\n${logHelper}\ntest('size', async ({ size }) => { log('size ' + size + ' ' + test.info().project.name) })\n`,
  })
  const r = await runVt(p, ['-j', '1'])
  assert.equal(r.exitCode, 0, r.output)
  const log = p.log()
  assert.equal(log[0], 'setup ran')
  assert.deepEqual(log.slice(1).sort(), ['size 1 small', 'size 100 large'])
  assert.deepEqual(
    allTests(r.json)
      .map(x => `${x.projectName}:${x.title}`)
      .sort(),
    ['large:size', 'setup:prepare', 'small:size'],
  )

  p.write({
    'setup.vt.ts': `import { test } from 'vt'\ntest('prepare', async () => { throw new Error('setup broke') })\n`,
  })
  const gated = await runVt(p, ['-j', '1'])
  assert.equal(gated.exitCode, 1, gated.output)
  const sizes = allTests(gated.json).filter(x => x.title === 'size')
  assert.ok(
    sizes.every(x => x.results.every(res => res.status === 'skipped')),
    'dependents do not run',
  )
})

test('globalSetup runs before the tests and globalTeardown after them', async t => {
  const p = project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'
export default defineConfig({ globalSetup: './setup.ts', globalTeardown: './teardown.ts' })
`,
    'setup.ts': `${logHelper}\nexport default async function () { log('global setup') }\n`,
    'teardown.ts': `${logHelper}\nexport default async function () { log('global teardown') }\n`,
    'a.vt.ts': `import { test } from 'vt'\n${logHelper}\ntest('t', async () => { log('test') })\n`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 0, r.output)
  assert.deepEqual(p.log(), ['global setup', 'test', 'global teardown'])
})

test('a custom reporter given by path receives the events and its options', async t => {
  const p = project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'
export default defineConfig({ reporter: [['./my-reporter.ts', { prefix: 'MINE' }]] })
`,
    'my-reporter.ts': `import type { Reporter } from 'vt/reporter'
export default class MyReporter implements Reporter {
  constructor(private options: { prefix: string }) {}
  onBegin(_config: any, suite: any) { console.log(this.options.prefix, 'begin', suite.allTests().length) }
  onTestEnd(test: any, result: any) { console.log(this.options.prefix, 'end', test.title, result.status) }
  onEnd(result: any) { console.log(this.options.prefix, 'done', result.status) }
}
`,
    'a.vt.ts': `import { test } from 'vt'\ntest('one', async () => {})\n`,
  })
  const r = await runVt(p, [], { noReporterFlag: true })
  assert.equal(r.exitCode, 0, r.output)
  assert.match(r.stdout, /MINE begin 1\nMINE end one passed\nMINE done passed/)
})

test('list on a terminal shows running tests and rewrites their lines in place', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'
test('first', async () => {
  await test.step('a step', async () => { await new Promise(r => setTimeout(r, 200)) })
})
test('second', async () => { throw new Error('nope') })
`,
  })
  // `script` gives vt a pseudo-terminal, as an interactive shell would.
  const r = spawnSync('script', ['-qec', `${process.execPath} ${vtBin} test -j 1 --reporter list`, '/dev/null'], {
    cwd: p.dir,
    encoding: 'utf8',
    env: { ...process.env, COLUMNS: '120', LINES: '40', FORCE_COLOR: '', NO_COLOR: '', TERM: 'xterm', CI: '' },
    timeout: 60_000,
  })
  if (r.error) return t.skip(`script(1) is not usable here: ${r.error.message}`)
  const out = r.stdout
  assert.equal(r.status, 1, out)
  assert.match(out, /\u001b\[/, 'colors on a terminal')
  assert.match(out, /first › a step/, 'the running step is shown')
  assert.match(out, /\u001b\[\d+A\r\u001b\[2K.*✓.*first/, 'the line of a finished test is rewritten')
  assert.match(out, /1 passed.*1 failed/)

  const line = spawnSync('script', ['-qec', `${process.execPath} ${vtBin} test -j 1 --reporter line`, '/dev/null'], {
    cwd: p.dir,
    encoding: 'utf8',
    env: { ...process.env, COLUMNS: '120', LINES: '40', FORCE_COLOR: '', NO_COLOR: '', TERM: 'xterm', CI: '' },
    timeout: 60_000,
  })
  assert.equal(line.status, 1, line.stdout)
  assert.match(line.stdout, /\u001b\[1A\u001b\[2K\[1\/2\]/, 'the status line is rewritten in place')
  assert.match(line.stdout, /1\) a\.vt\.ts:5:1 › second/, 'the failure is printed')
})
