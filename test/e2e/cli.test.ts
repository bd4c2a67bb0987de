// End to end: bad input (syntax errors, duplicate titles, test.only, config and flag errors), filters
// (--list, -g, --grep-invert, file:line, --project), --shard partitions, --last-failed, --repeat-each, -x.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { allTests, logHelper, project, runVt, testByPath, vtBin } from './helpers.ts'

const ok = (title: string) => `test(${JSON.stringify(title)}, async () => {})\n`

test('a spec with a syntax error fails alone with file:line while the others run', async t => {
  const p = project(t, {
    'good.vt.ts': `import { test } from 'vt'\n${ok('still runs')}`,
    'broken.vt.ts': `import { test } from 'vt'\n\ntest('x', async () => {\n  const = 1\n})\n`,
    'throws.vt.ts': `import { test } from 'vt'\nthrow new Error('import-time failure')\n`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  assert.equal(testByPath(r.json, 'still runs').status, 'expected')
  assert.match(r.output, /broken\.vt\.ts:4/)
  assert.match(r.output, /import-time failure/)
  assert.match(r.output, /throws\.vt\.ts:2/)
  const errors = JSON.stringify(r.json!.errors)
  assert.match(errors, /broken\.vt\.ts/)
  assert.match(errors, /import-time failure/)
  assert.ok(Number(r.junit!.attributes.errors) >= 2, r.junitXml)
})

test('duplicate test titles in a file are an error naming both lines', async t => {
  const p = project(t, { 'dup.vt.ts': `import { test } from 'vt'\n${ok('same')}${ok('other')}${ok('same')}` })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 1, r.output)
  assert.match(r.output, /duplicate/i)
  assert.match(r.output, /dup\.vt\.ts:2/)
  assert.match(r.output, /dup\.vt\.ts:4/)
})

test('test.only runs only the focused test, and is an error with --forbid-only', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'\n${ok('plain')}test.only('focused', async () => {})\n`,
    'b.vt.ts': `import { test } from 'vt'\n${ok('other file')}`,
  })
  const r = await runVt(p, [])
  assert.equal(r.exitCode, 0, r.output)
  assert.deepEqual(
    allTests(r.json).map(x => x.title),
    ['focused'],
  )
  const forbidden = await runVt(p, ['--forbid-only'])
  assert.equal(forbidden.exitCode, 1, forbidden.output)
  assert.match(forbidden.output, /only/)
  assert.match(forbidden.output, /a\.vt\.ts:3/)
})

test('--shard i/n partitions the suite exactly', async t => {
  const files: Record<string, string> = {}
  const sizes = [1, 4, 2, 3, 2, 1, 5]
  sizes.forEach((n, i) => {
    files[`f${i}.vt.ts`] =
      `import { test } from 'vt'\n${Array.from({ length: n }, (_, j) => ok(`f${i} t${j}`)).join('')}`
  })
  const p = project(t, files)
  const full = await runVt(p, [])
  assert.equal(full.exitCode, 0, full.output)
  const everything = allTests(full.json)
    .map(x => x.testId)
    .sort()
  assert.equal(everything.length, 18)
  const seen: string[] = []
  for (const shard of ['1/3', '2/3', '3/3']) {
    const r = await runVt(p, ['--shard', shard])
    assert.equal(r.exitCode, 0, r.output)
    const ids = allTests(r.json)
      .filter(x => x.results.length)
      .map(x => x.testId)
    assert.ok(ids.length > 0, `shard ${shard} runs something`)
    seen.push(...ids)
  }
  assert.deepEqual(seen.sort(), everything, 'every test in exactly one shard')
  const bad = await runVt(p, ['--shard', '4/3'])
  assert.notEqual(bad.exitCode, 0)
  assert.match(bad.output, /shard/)
})

test('--last-failed reruns the failed tests and those that did not run', async t => {
  const p = project(t, {
    '1-pass.vt.ts': `import { test } from 'vt'\n${ok('passes')}`,
    '2-fail.vt.ts': `import { test } from 'vt'\ntest('fails', async () => { throw new Error('no') })\n`,
    '3-late.vt.ts': `import { test } from 'vt'\n${ok('never reached')}`,
  })
  const first = await runVt(p, ['-j', '1', '-x'])
  assert.equal(first.exitCode, 1, first.output)
  assert.equal(testByPath(first.json, 'fails').status, 'unexpected')
  assert.equal(testByPath(first.json, 'never reached').results.length, 0, '-x stops before the third file')
  assert.ok(p.exists('test-results/.last-run.json'))
  const again = await runVt(p, ['-j', '1', '--last-failed'])
  assert.equal(again.exitCode, 1, again.output)
  assert.deepEqual(
    allTests(again.json)
      .filter(x => x.results.length)
      .map(x => x.title)
      .sort(),
    ['fails', 'never reached'],
  )
})

test('--list prints the tests without running them; -g, --grep-invert, file:line and --repeat-each select', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'\n${logHelper}\ntest('alpha one', async () => log('alpha one'))\ntest('alpha two', async () => log('alpha two'))\ntest('beta', async () => log('beta'))\n`,
    'b.vt.ts': `import { test } from 'vt'\n${logHelper}\ntest('gamma', async () => log('gamma'))\n`,
  })
  const listed = await runVt(p, ['--list'], { reporters: [] })
  assert.equal(listed.exitCode, 0, listed.output)
  assert.match(listed.stdout, /a\.vt\.ts:\d+:\d+ › alpha one/)
  assert.match(listed.stdout, /b\.vt\.ts:\d+:\d+ › gamma/)
  assert.match(listed.stdout, /4 tests in 2 files/)
  assert.deepEqual(p.log(), [], '--list runs nothing')

  const grep = await runVt(p, ['-g', 'alpha'])
  assert.deepEqual(
    allTests(grep.json)
      .map(x => x.title)
      .sort(),
    ['alpha one', 'alpha two'],
  )
  const invert = await runVt(p, ['--grep-invert', 'alpha'])
  assert.deepEqual(
    allTests(invert.json)
      .map(x => x.title)
      .sort(),
    ['beta', 'gamma'],
  )
  const line = testByPath(grep.json, 'alpha two').line
  const byLine = await runVt(p, [`a.vt.ts:${line}`])
  assert.deepEqual(
    allTests(byLine.json).map(x => x.title),
    ['alpha two'],
  )
  const byFile = await runVt(p, ['b.vt'])
  assert.deepEqual(
    allTests(byFile.json).map(x => x.title),
    ['gamma'],
  )

  const repeated = await runVt(p, ['--repeat-each', '3', '-g', 'beta'])
  assert.equal(repeated.exitCode, 0, repeated.output)
  const betas = allTests(repeated.json)
  assert.equal(betas.length, 3)
  assert.deepEqual(betas.map(x => x.repeatEachIndex).sort(), [0, 1, 2])
  assert.equal(new Set(betas.map(x => x.testId)).size, 3)
})

test('-x stops after the first failure; the rest did not run', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'\ntest('first fails', async () => { throw new Error('x') })\n${ok('second')}${ok('third')}`,
  })
  const r = await runVt(p, ['-j', '1', '-x'])
  assert.equal(r.exitCode, 1, r.output)
  assert.equal(testByPath(r.json, 'first fails').status, 'unexpected')
  assert.equal(testByPath(r.json, 'second').results.length, 0)
  assert.equal(r.json!.stats.didNotRun, 2)
})

test('config errors name the key path; unknown flags and projects list what exists', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'\n${ok('ok')}`,
    'vt.config.ts': `import { defineConfig } from 'vt'\nexport default defineConfig({ projects: [{ name: 'one' }, { name: 'two', retries: 'many' as any }] })\n`,
  })
  const wrongType = await runVt(p, [])
  assert.notEqual(wrongType.exitCode, 0)
  assert.match(wrongType.output, /projects(\.|\[)1\]?\.retries/)

  p.write({
    'vt.config.ts': `import { defineConfig } from 'vt'\nexport default defineConfig({ timeuot: 5 } as any)\n`,
  })
  const unknownKey = await runVt(p, [])
  assert.notEqual(unknownKey.exitCode, 0)
  assert.match(unknownKey.output, /timeuot/)

  p.write({
    'vt.config.ts': `import { defineConfig } from 'vt'\nexport default defineConfig({ projects: [{ name: 'one' }, { name: 'two' }] })\n`,
  })
  const flag = await runVt(p, ['--no-such-flag'])
  assert.notEqual(flag.exitCode, 0)
  assert.match(flag.output, /--no-such-flag/)
  assert.match(flag.output, /--grep/)
  const proj = await runVt(p, ['--project', 'three'])
  assert.notEqual(proj.exitCode, 0)
  assert.match(proj.output, /three/)
  assert.match(proj.output, /one/)
  assert.match(proj.output, /two/)
  const both = await runVt(p, ['--project', 't*'])
  assert.equal(both.exitCode, 0, both.output)
  assert.deepEqual(
    allTests(both.json).map(x => x.projectName),
    ['two'],
  )
})

test('a CommonJS project (package.json without "type": "module") either works or is told how to fix it', async t => {
  const p = project(t, {
    'package.json': '{ "name": "cjs-project", "private": true }\n',
    'a.vt.ts': `import { test, expect } from 'vt'\ntest('works', async () => { expect(1).toBe(1) })\n`,
  })
  const r = await runVt(p, [])
  if (r.exitCode === 0) {
    assert.equal(testByPath(r.json, 'works').status, 'expected')
    return
  }
  // The runner refuses CommonJS specs: the message must name the file and the fix.
  assert.match(r.output, /a\.vt\.ts/)
  assert.match(r.output, /"type": "module"/)
})

test('vt --version and vt help', async t => {
  const p = project(t, {})
  const { execFileSync } = await import('node:child_process')
  const { vtBin, repoRoot } = await import('./helpers.ts')
  const version = execFileSync(process.execPath, [vtBin, '--version'], { cwd: p.dir, encoding: 'utf8' }).trim()
  const pkg = JSON.parse((await import('node:fs')).readFileSync(`${repoRoot}/package.json`, 'utf8'))
  assert.equal(version, pkg.version)
  const help = execFileSync(process.execPath, [vtBin, 'help', 'test'], { cwd: p.dir, encoding: 'utf8' })
  assert.match(help, /--shard/)
  assert.match(help, /--last-failed/)
})

test('blob reports of the shards merge into the report of the whole run', async t => {
  const { mergeBlobReports } = await import('../../reporters/blobMerge.ts')
  const { default: JsonReporter } = await import('../../reporters/json.ts')
  const files: Record<string, string> = {}
  for (let i = 0; i < 4; i++)
    files[`f${i}.vt.ts`] =
      `import { test } from 'vt'\n${ok(`f${i} passes`)}test('f${i} fails', async () => { throw new Error('f${i}') })\n`
  const p = project(t, files)
  const full = await runVt(p, ['--reporter', 'blob'], { noReporterFlag: true })
  assert.equal(full.exitCode, 1, full.output)
  for (const shard of ['1/2', '2/2']) {
    const r = await runVt(p, ['--shard', shard, '--reporter', 'blob'], { noReporterFlag: true })
    assert.equal(r.exitCode, 1, r.output)
  }
  const dir = `${p.dir}/blob-report`
  const merge = async (names: string[]) => {
    const out: string[] = []
    await mergeBlobReports(
      names.map(n => `${dir}/${n}`),
      [new JsonReporter({ stream: { write: (s: string) => out.push(s) } })],
    )
    return JSON.parse(out.join(''))
  }
  const whole = await merge(['report.jsonl'])
  const merged = await merge(['report-1-of-2.jsonl', 'report-2-of-2.jsonl'])
  const summary = (report: any) =>
    allTests(report)
      .map(x => `${x.path} ${x.status} ${x.results.map((r: any) => r.errors.map((e: any) => e.message)).join()}`)
      .sort()
  assert.equal(summary(whole).length, 8)
  assert.deepEqual(summary(merged), summary(whole))
  assert.deepEqual({ ...merged.stats, startTime: 0, duration: 0 }, { ...whole.stats, startTime: 0, duration: 0 })
})

test('shards write blob reports that merge-reports replays as one run', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'\n${ok('a1')}${ok('a2')}`,
    'b.vt.ts': `import { test } from 'vt'\n${ok('b1')}test('b2 fails', async () => { throw new Error('b2') })\n`,
  })
  for (const shard of ['1/2', '2/2']) {
    const r = await runVt(p, ['--shard', shard], { reporters: ['blob'] })
    assert.ok(allTests(r.json).length === 2, `shard ${shard} runs one file\n${r.output}`)
  }
  const merged = spawnSync(process.execPath, [vtBin, 'merge-reports', '--reporter', 'junit'], {
    cwd: p.dir,
    encoding: 'utf8',
    env: { ...process.env, VT_JUNIT_OUTPUT_FILE: 'merged.xml', NODE_TEST_CONTEXT: undefined },
  })
  assert.equal(merged.status, 1, merged.stderr)
  const xml = readFileSync(path.join(p.dir, 'merged.xml'), 'utf8')
  assert.match(xml, /<testsuites [^>]*tests="4" failures="1"/)
  assert.match(xml, /b2 fails/)
  // The html report of merged shards keeps history too: merging the same shards again is the same run, a later
  // run adds its own entry, and the tests have the same ids in both.
  const history = () => JSON.parse(readFileSync(path.join(p.dir, 'vt-report', 'history.json'), 'utf8')).runs
  for (let i = 0; i < 2; i++) {
    const html = spawnSync(process.execPath, [vtBin, 'merge-reports', '--reporter', 'html'], {
      cwd: p.dir,
      encoding: 'utf8',
      env: { ...process.env, NODE_TEST_CONTEXT: undefined },
    })
    assert.equal(html.status, 1, html.stderr)
    assert.equal(history().length, 1)
  }
  assert.deepEqual(history()[0].totals, { passed: 3, failed: 1, flaky: 0, skipped: 0 })
  await runVt(p, [], { reporters: ['html'] })
  const [mergedRun, laterRun] = history()
  assert.ok(laterRun, 'the later run is added')
  assert.deepEqual(Object.keys(laterRun.tests).sort(), Object.keys(mergedRun.tests).sort())
  const none = spawnSync(process.execPath, [vtBin, 'merge-reports', 'nowhere'], { cwd: p.dir, encoding: 'utf8' })
  assert.equal(none.status, 1)
  assert.match(none.stderr, /no directory .*nowhere/)
})
