// Pure planning pieces: sharding partitions exactly (property-based), filters, only semantics, project selection
// and phases, the last-run file.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import fc from 'fast-check'
import type { FullProject } from '../../src/config/types.ts'
import { createFileMatcher } from '../../src/runner/main/files.ts'
import {
  filterOnly,
  filterTests,
  grepText,
  matchesFileFilters,
  matchesGrep,
  parseFileFilters,
  parseGrep,
} from '../../src/runner/main/filters.ts'
import { readLastRun, writeLastRun } from '../../src/runner/main/lastRun.ts'
import { filterProjects, projectPhases, withDependencies } from '../../src/runner/main/projects.ts'
import { filterForShard, shardRange } from '../../src/runner/main/shard.ts'
import { createFileGroups } from '../../src/runner/main/testGroups.ts'
import { Suite, TestCase } from '../../src/runner/model.ts'
import { seeded } from '../helpers/property.ts'

const tmp: string[] = []
after(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true })
})

describe('sharding', () => {
  test('shards 1..n partition the groups exactly, in order, never splitting a group', t => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 12 }),
        (sizes, total) => {
          const groups = sizes.map((n, id) => ({ id, tests: Array.from({ length: n }, (_, i) => `${id}.${i}`) }))
          const shards = Array.from({ length: total }, (_, i) => filterForShard(groups, { current: i + 1, total }))
          // Concatenated in shard order they are exactly the groups, each once.
          assert.deepEqual(
            shards.flat().map(g => g.id),
            groups.map(g => g.id),
          )
          // Balanced: a shard's size is within one biggest group of its ideal share.
          const count = sizes.reduce((a, b) => a + b, 0)
          const biggest = Math.max(0, ...sizes)
          for (const shard of shards) {
            const n = shard.reduce((a, g) => a + g.tests.length, 0)
            assert.ok(Math.abs(n - count / total) <= biggest + 1, `shard of ${n} tests, ideal ${count / total}`)
          }
        },
      ),
      seeded(t, { numRuns: 500 }),
    )
  })

  test('shard ranges cover [0, count) without gaps or overlaps', t => {
    fc.assert(
      fc.property(fc.nat(1000), fc.integer({ min: 1, max: 50 }), (count, total) => {
        let next = 0
        for (let i = 1; i <= total; i++) {
          const [from, to] = shardRange(count, i, total)
          assert.equal(from, next)
          assert.ok(to >= from && to - from <= Math.ceil(count / total))
          next = to
        }
        assert.equal(next, count)
      }),
      seeded(t),
    )
  })
})

// A small tree: file › [t1, describe d (line 10) › [t2, t3], t4]
function tree(): { file: Suite; tests: TestCase[]; d: Suite } {
  const file = new Suite('specs/a.vt.ts', 'file')
  file._file = '/p/specs/a.vt.ts'
  const loc = (line: number) => ({ file: '/p/specs/a.vt.ts', line, column: 1 })
  const mk = (title: string, line: number) => {
    const t = new TestCase(title, () => {}, undefined, loc(line))
    t.id = title
    t._workerHash = 'h'
    return t
  }
  const t1 = mk('t1', 3)
  const d = new Suite('d', 'describe')
  d.location = loc(10)
  const t2 = mk('t2 @slow', 11)
  t2.tags.push('@slow')
  const t3 = mk('t3', 12)
  const t4 = mk('t4', 20)
  file._addTest(t1)
  file._addSuite(d)
  d._addTest(t2)
  d._addTest(t3)
  file._addTest(t4)
  return { file, tests: [t1, t2, t3, t4], d }
}

describe('filters', () => {
  test('path filters: substring, regex, ./relative path, file:line on a test or a describe', () => {
    const { tests } = tree()
    const pick = (args: string[]) =>
      tests.filter(t => matchesFileFilters(t, '/p/specs/a.vt.ts', parseFileFilters(args, '/p'))).map(t => t.title)
    assert.deepEqual(pick([]), ['t1', 't2 @slow', 't3', 't4'])
    assert.deepEqual(pick(['A.VT']), ['t1', 't2 @slow', 't3', 't4'])
    assert.deepEqual(pick(['b.vt.ts']), [])
    assert.deepEqual(pick(['/specs\\/a/']), ['t1', 't2 @slow', 't3', 't4'])
    assert.deepEqual(pick(['./specs/a.vt.ts']), ['t1', 't2 @slow', 't3', 't4'])
    assert.deepEqual(pick(['./other/a.vt.ts']), [])
    assert.deepEqual(pick(['a.vt.ts:12']), ['t3'])
    assert.deepEqual(pick(['a.vt.ts:10']), ['t2 @slow', 't3'])
    assert.deepEqual(pick(['a.vt.ts:3', 'a.vt.ts:20']), ['t1', 't4'])
    assert.deepEqual(pick(['a.vt.ts:3:2']), [])
  })

  test('grep matches "project file titles tags", case-insensitive; invert excludes', () => {
    const { tests } = tree()
    const texts = tests.map(t => grepText(t, 'two-host', 'specs/a.vt.ts'))
    assert.equal(texts[1], 'two-host specs/a.vt.ts d t2 @slow @slow')
    const g = parseGrep('TWO-HOST.*D T3', '--grep')
    assert.deepEqual(
      texts.filter(t => matchesGrep(t, g)),
      ['two-host specs/a.vt.ts d t3'],
    )
    assert.deepEqual(texts.filter(t => matchesGrep(t, parseGrep('@slow', '-g'), true)).length, 3)
    assert.throws(() => parseGrep('(', '--grep'), /--grep "\(" is not a valid regular expression/)
  })

  test('filterTests drops emptied describes', () => {
    const { file } = tree()
    filterTests(file, t => t.title === 't1')
    assert.equal(file.entries.length, 1)
    assert.equal(file.suites.length, 0)
  })

  test('only: focused tests win; a focused describe keeps all its tests unless it focuses some itself', () => {
    let { file, tests, d } = tree()
    d.only = true
    assert.equal(filterOnly(file), true)
    assert.deepEqual(
      file.allTests().map(t => t.title),
      ['t2 @slow', 't3'],
    )
    ;({ file, tests, d } = tree())
    d.only = true
    tests[2].only = true
    tests[3].only = true
    filterOnly(file)
    assert.deepEqual(
      file.allTests().map(t => t.title),
      ['t3', 't4'],
    )
    ;({ file } = tree())
    assert.equal(filterOnly(file), false)
    assert.equal(file.allTests().length, 4)
  })
})

function proj(name: string, extra: Partial<FullProject> = {}): FullProject {
  return {
    id: name,
    name,
    use: {},
    testDir: '/p',
    testMatch: '**/*.vt.ts',
    testIgnore: [],
    outputDir: '/p/test-results',
    retries: 0,
    repeatEach: 1,
    timeout: 0,
    fullyParallel: false,
    dependencies: [],
    grep: /.*/,
    grepInvert: null,
    metadata: {},
    ...extra,
  }
}

describe('projects', () => {
  const all = [proj('setup'), proj('one-host', { dependencies: ['setup'] }), proj('two-host'), proj('lab')]

  test('--project matches names case-insensitively with * wildcards', () => {
    const names = (p: string[]) => filterProjects(all, p).map(x => x.name)
    assert.deepEqual(names([]), ['setup', 'one-host', 'two-host', 'lab'])
    assert.deepEqual(names(['*-host']), ['one-host', 'two-host'])
    assert.deepEqual(names(['LAB', 'setup']), ['setup', 'lab'])
    assert.deepEqual(names(['t*o*']), ['two-host'])
  })

  test('an unknown project is an error listing the projects', () => {
    assert.throws(
      () => filterProjects(all, ['three-host']),
      /no project matches "three-host"\. Available projects: "setup", "one-host", "two-host", "lab"/,
    )
  })

  test('dependencies are pulled in and run in an earlier phase', () => {
    const selected = withDependencies(all, filterProjects(all, ['one-host']))
    assert.deepEqual(
      selected.map(p => p.name),
      ['setup', 'one-host'],
    )
    assert.deepEqual(
      projectPhases(all).map(phase => phase.map(p => p.name)),
      [['setup', 'two-host', 'lab'], ['one-host']],
    )
  })
})

describe('test groups', () => {
  test('serial describes stay together, parallel mode splits per test, hashes separate groups', () => {
    const { file, tests, d } = tree()
    tests[3]._workerHash = 'other'
    const groups = createFileGroups(file, proj('p'))
    assert.deepEqual(
      groups.map(g => g.tests.map(t => t.title)),
      [['t1', 't2 @slow', 't3'], ['t4']],
    )
    d.mode = 'serial'
    const parallel = createFileGroups(file, proj('p', { fullyParallel: true }))
    assert.deepEqual(
      parallel.map(g => g.tests.map(t => t.title)),
      [['t1'], ['t2 @slow', 't3'], ['t4']],
    )
    assert.ok(parallel.every(g => g.workerHash.endsWith('-r0')))
  })
})

test('file matcher: globs relative to testDir, bare names at any depth, regexes on the absolute path', () => {
  const m = createFileMatcher(['**/*.vt.ts'], '/p')
  assert.equal(m('/p/a/b.vt.ts'), true)
  assert.equal(m('/p/a/b.ts'), false)
  assert.equal(m('/elsewhere/b.vt.ts'), false)
  assert.equal(createFileMatcher('setup.vt.ts', '/p')('/p/deep/setup.vt.ts'), true)
  assert.equal(createFileMatcher(/deep\/.*\.vt\.ts$/, '/p')('/p/deep/x.vt.ts'), true)
  assert.equal(createFileMatcher([], '/p')('/p/x.vt.ts'), false)
})

describe('last run file', () => {
  test('round trip, missing file, corrupt file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vt-lastrun-'))
    tmp.push(dir)
    const out = path.join(dir, 'test-results')
    assert.equal(await readLastRun(out), undefined)
    const info = { status: 'failed' as const, failedTests: ['a', 'b'], notRunTests: ['c'] }
    await writeLastRun(out, info)
    assert.deepEqual(await readLastRun(out), info)
    writeFileSync(path.join(out, '.last-run.json'), '{not json')
    await assert.rejects(readLastRun(out), /\.last-run\.json is not valid JSON/)
  })
})
