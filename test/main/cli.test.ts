// The CLI through the real bin/vt.js: version, help, flag errors that list what exists, config errors.
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { cleanupProjects, eventsReporter, makeProject, readEvents, repoRoot, runVt, vtImport } from './helpers.ts'

after(cleanupProjects)

test('vt --version prints the package version', async () => {
  const version = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version
  const r = await runVt(['--version'])
  assert.equal(r.code, 0)
  assert.equal(r.stdout.trim(), version)
})

test('vt help lists the commands; vt help test lists every flag', async () => {
  const top = await runVt(['help'])
  assert.equal(top.code, 0)
  assert.match(top.stdout, /Commands:[\s\S]*test \[options\] \[filters\.\.\.\]/)
  const r = await runVt(['help', 'test'])
  assert.equal(r.code, 0)
  for (const flag of [
    '--project',
    '--grep',
    '--grep-invert',
    '--list',
    '--repeat-each',
    '--retries',
    '--workers',
    '--shard',
    '--timeout',
    '--global-timeout',
    '--max-failures',
    '--forbid-only',
    '--fail-on-flaky-tests',
    '--pass-with-no-tests',
    '--reporter',
    '--last-failed',
    '--config',
    '--output',
    '--quiet',
  ])
    assert.ok(r.stdout.includes(flag), `help test lacks ${flag}`)
})

test('an unknown flag is an error that lists the valid ones', async () => {
  const r = await runVt(['test', '--retires', '2'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /unknown option '--retires'/)
  assert.match(r.stderr, /Did you mean --retries\?/)
  assert.match(r.stderr, /valid options of vt test:[\s\S]*--grep-invert <regex>[\s\S]*--last-failed/)
})

test('an unknown command lists the commands', async () => {
  const r = await runVt(['tset'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /unknown command 'tset'/)
  assert.match(r.stderr, /commands:\n[\s\S]*\n {2}test {2,}run the specs/)
})

test('bad flag values are rejected with the reason', async () => {
  const cases: [string[], RegExp][] = [
    [['--shard', '3/2'], /'--shard <i\/n>' argument '3\/2' is invalid\. expected i\/n with 1 <= i <= n/],
    [['--shard', 'two'], /expected i\/n, e\.g\. 2\/4/],
    [['--retries', '-1'], /'--retries <n>' argument '-1' is invalid/],
    [['--repeat-each', '0'], /expected an integer >= 1/],
    [['-j', 'many'], /expected a positive number of workers or a percentage/],
    [['--timeout', '1.5s'], /'--timeout <ms>' argument '1\.5s' is invalid/],
  ]
  for (const [args, re] of cases) {
    const r = await runVt(['test', ...args])
    assert.equal(r.code, 1, args.join(' '))
    assert.match(r.stderr, re, args.join(' '))
  }
})

test('an unknown project is an error listing the projects', async () => {
  const dir = makeProject({
    'vt.config.ts': "export default { projects: [{ name: 'one-host' }, { name: 'two-host' }] }\n",
  })
  const r = await runVt(['test', '--project', 'three*'], { cwd: dir })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /no project matches "three\*"\. Available projects: "one-host", "two-host"/)
})

test('an unknown reporter lists the built-in ones', async () => {
  const dir = makeProject({ 'a.vt.ts': "import { test } from VT_IMPORT\ntest('x', () => {})\n" })
  const r = await runVt(['test', '--reporter', 'fancy'], { cwd: dir })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /unknown reporter "fancy"\. Built-in reporters: list, line, dot, json, junit/)
})

test('a config error is printed with file:line and key path, without a stack', async () => {
  const dir = makeProject({ 'vt.config.ts': 'export default {\n  testDir: ".",\n  retris: 2,\n}\n' })
  const r = await runVt(['test'], { cwd: dir })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /vt\.config\.ts:3: retris: unknown key \(did you mean "retries"\?\)/)
  assert.doesNotMatch(r.stderr, /\n\s+at /)
})

test('no tests found says where it looked; --pass-with-no-tests succeeds', async () => {
  const dir = makeProject({ 'vt.config.ts': "export default { testDir: 'specs' }\n", 'specs/readme.md': 'x' })
  const r = await runVt(['test'], { cwd: dir })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /no tests found\.\n\s+looked in .*specs for "\*\*\/\*\.vt\.ts": 0 files/)
  const ok = await runVt(['test', '--pass-with-no-tests'], { cwd: dir })
  assert.equal(ok.code, 0)
})

test('-c accepts a config file or its directory', async () => {
  const dir = makeProject({
    'sub/vt.config.ts': "export default { testDir: 'specs' }\n",
    'sub/specs/a.vt.ts': "import { test } from VT_IMPORT\ntest('in sub', () => {})\n",
  })
  for (const c of ['sub', 'sub/vt.config.ts']) {
    const r = await runVt(['test', '-c', c, '--list'], { cwd: dir })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /specs\/a\.vt\.ts:2:1 › in sub\nTotal: 1 test in 1 file/)
  }
  const missing = await runVt(['test', '-c', 'nope.ts'], { cwd: dir })
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /config file not found: .*nope\.ts/)
})

test('TypeScript specs run in a CommonJS package; JavaScript specs that would load as CommonJS stop the run', async () => {
  const dir = makeProject({ 'a.vt.ts': "import { test } from VT_IMPORT\ntest('x', () => {})\n" })
  writeFileSync(path.join(dir, 'package.json'), '{"name":"cjs","type":"commonjs"}\n')
  const ts = await runVt(['test'], { cwd: dir })
  assert.equal(ts.code, 0, ts.stderr)
  writeFileSync(path.join(dir, 'b.vt.js'), `import { test } from ${JSON.stringify(vtImport)}\ntest('y', () => {})\n`)
  const js = await runVt(['test', '-c', writeConfig(dir)], { cwd: dir })
  assert.equal(js.code, 1)
  assert.match(
    js.stderr,
    /spec files must load as ES modules[\s\S]*b\.vt\.js is in .*package\.json, which says "type": "commonjs": rename the spec to \.ts or \.mjs, or set "type": "module" there/,
  )
  writeFileSync(path.join(dir, 'package.json'), '{"name":"no-type"}\n')
  const none = await runVt(['test', '-c', writeConfig(dir)], { cwd: dir })
  assert.match(none.stderr, /b\.vt\.js is in .*package\.json, which has no "type"/)
  writeFileSync(path.join(dir, 'package.json'), '{"name":"esm","type":"module"}\n')
  const ok = await runVt(['test', '-c', writeConfig(dir)], { cwd: dir })
  assert.equal(ok.code, 0, ok.stderr)
})

/** A config that also matches .vt.js specs. */
function writeConfig(dir: string): string {
  writeFileSync(path.join(dir, 'js.config.mjs'), "export default { testMatch: ['**/*.vt.ts', '**/*.vt.js'] }\n")
  return 'js.config.mjs'
}

test('-j takes a number or a percentage of the cores', async () => {
  const dir = makeProject({
    'events.ts': eventsReporter,
    'vt.config.ts': "export default { reporter: [['./events.ts']] }\n",
    'a.vt.ts': "import { test } from VT_IMPORT\ntest('x', () => {})\n",
  })
  for (const [arg, want] of [
    ['3', 3],
    ['100%', availableParallelism()],
    ['1%', 1],
  ] as const) {
    rmSync(path.join(dir, 'events.jsonl'), { force: true })
    const r = await runVt(['test', '-j', arg], { cwd: dir })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readEvents(dir)[0].workers, want, `-j ${arg}`)
  }
})

test('--list with -g, --grep-invert, --project wildcards and file:line', async () => {
  const dir = makeProject({
    'vt.config.ts': "export default { projects: [{ name: 'one-host' }, { name: 'two-host' }, { name: 'lab' }] }\n",
    'a.vt.ts':
      "import { test } from VT_IMPORT\ntest('boots', () => {})\ntest.describe('migration', () => {\n  test('precopy @slow', () => {})\n})\n",
    'b.vt.ts': "import { test } from VT_IMPORT\ntest('pings', () => {})\n",
  })
  const list = async (...args: string[]) => {
    const r = await runVt(['test', '--list', ...args], { cwd: dir })
    assert.equal(r.code, 0, r.stderr)
    return r.stdout.split('\n').filter(l => l.startsWith('  '))
  }
  assert.equal((await list()).length, 9)
  assert.deepEqual(await list('--project', '*-host', '-g', 'migration'), [
    '  [one-host] › a.vt.ts:4:3 › migration › precopy @slow',
    '  [two-host] › a.vt.ts:4:3 › migration › precopy @slow',
  ])
  assert.deepEqual(await list('--project', 'lab', '--grep-invert', '@slow'), [
    '  [lab] › a.vt.ts:2:1 › boots',
    '  [lab] › b.vt.ts:2:1 › pings',
  ])
  assert.deepEqual(await list('--project', 'LAB', 'a.vt.ts:3'), ['  [lab] › a.vt.ts:4:3 › migration › precopy @slow'])
  assert.deepEqual(await list('--project', 'lab', '-g', 'two-host'), [])
})
