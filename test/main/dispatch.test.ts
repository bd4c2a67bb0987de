// The main process with the real worker: small spec projects in temp dirs run through bin/vt.js, observed by a
// custom reporter (loaded by module path) that records every event it receives.
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  cleanupProjects,
  type Event,
  eventsReporter,
  makeProject,
  readEvents,
  repoRoot,
  runVt,
  type VtResult,
} from './helpers.ts'

after(cleanupProjects)

function config(extra = ''): string {
  return `export default { reporter: [['./events.ts']], workers: 1, ${extra} }\n`
}

function spec(body: string): string {
  return `import { test, expect } from VT_IMPORT
import { appendFileSync, writeFileSync, existsSync } from 'node:fs'
const log = (line: string) => appendFileSync(new URL('./log.txt', import.meta.url), line + '\\n')
void log; void expect; void writeFileSync; void existsSync
${body}
`
}

const ends = (events: Event[]) => events.filter(e => e.type === 'testEnd')
const endOf = (events: Event[], title: string) => ends(events).filter(e => e.title === title)

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function nonEmpty(file: string): boolean {
  return existsSync(file) && readFileSync(file, 'utf8').length > 0
}

/** Waits for a file holding a pid (written by a test) and returns it; never 0 from a half-written file. */
async function readPid(file: string): Promise<number> {
  let pid = 0
  await waitFor(file, () => {
    pid = existsSync(file) ? Number(readFileSync(file, 'utf8')) : 0
    return pid > 0
  })
  return pid
}

async function waitFor(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

describe('workers', () => {
  test('a worker is reused across files with the same worker hash, and replaced after a failure', async () => {
    const files = {
      'events.ts': eventsReporter,
      'a.vt.ts': spec(
        `test('a1', () => { if (process.env.FAIL_A1) throw new Error('a1 fails') })\ntest('a2', () => {})`,
      ),
      'b.vt.ts': spec(`test('b1', () => {})`),
    }
    const dir = makeProject({ ...files, 'vt.config.ts': config() })
    const ok = await runVt(['test'], { cwd: dir })
    assert.equal(ok.code, 0, ok.stderr)
    const workers = new Set(ends(readEvents(dir)).map(e => e.workerIndex))
    assert.equal(workers.size, 1, 'three tests in two files share one worker')

    const failing = makeProject({ ...files, 'vt.config.ts': config() })
    const r = await runVt(['test'], { cwd: failing, env: { FAIL_A1: '1' } })
    assert.equal(r.code, 1)
    const ev = readEvents(failing)
    const [a1] = endOf(ev, 'a1')
    const [a2] = endOf(ev, 'a2')
    const [b1] = endOf(ev, 'b1')
    assert.equal(a1.status, 'failed')
    assert.equal(a2.status, 'passed')
    assert.notEqual(a2.workerIndex, a1.workerIndex, 'the failed worker is replaced')
    assert.equal(b1.workerIndex, a2.workerIndex)

    const keep = makeProject({ ...files, 'vt.config.ts': config('reuseWorkerAfterFailure: true') })
    await runVt(['test'], { cwd: keep, env: { FAIL_A1: '1' } })
    assert.equal(new Set(ends(readEvents(keep)).map(e => e.workerIndex)).size, 1, 'reuseWorkerAfterFailure keeps it')
  })

  test('a worker that dies mid-test fails that test by name; the rest of its group runs elsewhere', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config(),
      'c.vt.ts': spec(`test('c1', () => {})\ntest('c2 dies', () => { process.exit(7) })\ntest('c3', () => {})`),
    })
    const r = await runVt(['test'], { cwd: dir })
    assert.equal(r.code, 1)
    const ev = readEvents(dir)
    const [c2] = endOf(ev, 'c2 dies')
    assert.equal(c2.status, 'failed')
    assert.match(c2.errors[0], /worker process exited unexpectedly \(code 7\) while running "c\.vt\.ts › c2 dies"/)
    const [c3] = endOf(ev, 'c3')
    assert.equal(c3.status, 'passed')
    assert.notEqual(c3.workerIndex, c2.workerIndex)
  })

  test('-j 2 runs files at the same time (each test waits for the other to start)', async () => {
    const rendezvous = (me: string, other: string) =>
      spec(`test('${me}', async () => {
  writeFileSync(new URL('./${me}.started', import.meta.url), '')
  const deadline = Date.now() + 15000
  while (!existsSync(new URL('./${other}.started', import.meta.url))) {
    if (Date.now() > deadline) throw new Error('${other} never started: not parallel')
    await new Promise(r => setTimeout(r, 20))
  }
})`)
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config('timeout: 20000'),
      'p.vt.ts': rendezvous('p', 'q'),
      'q.vt.ts': rendezvous('q', 'p'),
    })
    const r = await runVt(['test', '-j', '2'], { cwd: dir })
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const ev = readEvents(dir)
    assert.deepEqual(new Set(ev.filter(e => e.type === 'testBegin').map(e => e.parallelIndex)), new Set([0, 1]))
  })

  test('fullyParallel splits one file across workers', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config('fullyParallel: true, timeout: 20000, workers: 2'),
      'f.vt.ts': spec(`for (const [me, other] of [['m', 'n'], ['n', 'm']]) test(me, async () => {
  writeFileSync(new URL('./' + me + '.started', import.meta.url), '')
  const deadline = Date.now() + 15000
  while (!existsSync(new URL('./' + other + '.started', import.meta.url))) {
    if (Date.now() > deadline) throw new Error(other + ' never started: not parallel')
    await new Promise(r => setTimeout(r, 20))
  }
})`),
    })
    const r = await runVt(['test'], { cwd: dir })
    assert.equal(r.code, 0, r.stdout + r.stderr)
  })
})

describe('retries', () => {
  test('a test that passes on retry is flaky: exit 0, or 1 with --fail-on-flaky-tests', async () => {
    const files = {
      'events.ts': eventsReporter,
      'vt.config.ts': config('retries: 2'),
      'r.vt.ts': spec(`test('flaky', () => { expect(test.info().retry).toBe(1) })`),
    }
    const dir = makeProject(files)
    const r = await runVt(['test'], { cwd: dir })
    assert.equal(r.code, 0, r.stderr)
    const results = endOf(readEvents(dir), 'flaky')
    assert.deepEqual(
      results.map(e => [e.retry, e.status]),
      [
        [0, 'failed'],
        [1, 'passed'],
      ],
    )
    assert.equal(results[1].outcome, 'flaky')
    assert.notEqual(results[0].workerIndex, results[1].workerIndex, 'retry runs on a fresh worker')
    const strict = await runVt(['test', '--fail-on-flaky-tests'], { cwd: makeProject(files) })
    assert.equal(strict.code, 1)
  })

  test('a serial describe is retried as a whole', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config('retries: 1'),
      's.vt.ts': spec(`test.describe.serial('s', () => {
  test('s1', () => {})
  test('s2', () => { expect(test.info().retry).toBe(1) })
  test('s3', () => {})
})`),
    })
    const r = await runVt(['test'], { cwd: dir })
    assert.equal(r.code, 0, r.stderr)
    const seq = ends(readEvents(dir)).map(e => `${e.title}:${e.retry}:${e.status}`)
    assert.deepEqual(seq, ['s1:0:passed', 's2:0:failed', 's3:0:skipped', 's1:1:passed', 's2:1:passed', 's3:1:passed'])
  })

  test('--retries on the CLI overrides the config', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config('retries: 0'),
      'r.vt.ts': spec(`test('always', () => { throw new Error('no') })`),
    })
    const r = await runVt(['test', '--retries', '2'], { cwd: dir })
    assert.equal(r.code, 1)
    assert.deepEqual(
      endOf(readEvents(dir), 'always').map(e => e.retry),
      [0, 1, 2],
    )
  })
})

describe('stopping early', () => {
  test('-x stops after the first failure; --last-failed reruns the failed and the not-run tests', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config(),
      'a.vt.ts': spec(`test('a0', () => {})\ntest('a1', () => { if (process.env.FAIL) throw new Error('a1 fails') })`),
      'b.vt.ts': spec(`test('b1', () => {})\ntest('b2', () => {})`),
    })
    const first = await runVt(['test', '-x'], { cwd: dir, env: { FAIL: '1' } })
    assert.equal(first.code, 1)
    const ev1 = readEvents(dir)
    assert.deepEqual(
      ends(ev1).map(e => `${e.title}:${e.status}`),
      ['a0:passed', 'a1:failed'],
    )
    const lastRun = JSON.parse(readFileSync(path.join(dir, 'test-results', '.last-run.json'), 'utf8'))
    assert.equal(lastRun.failedTests.length, 1)
    assert.equal(lastRun.notRunTests.length, 2)

    const second = await runVt(['test', '--last-failed', '--list'], { cwd: dir })
    assert.match(
      second.stdout,
      /a\.vt\.ts:6:1 › a1\n.*b\.vt\.ts:5:1 › b1\n.*b\.vt\.ts:6:1 › b2\nTotal: 3 tests in 2 files/,
    )
    const third = await runVt(['test', '--last-failed'], { cwd: dir })
    assert.equal(third.code, 0, third.stderr)
    const fourth = await runVt(['test', '--last-failed'], { cwd: dir })
    assert.equal(fourth.code, 0)
    assert.match(fourth.stdout, /every test passed in the last run/)
  })

  test('Ctrl-C interrupts the running test, tears its fixtures down, exits 130 and leaves no worker', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config('timeout: 60000'),
      'i.vt.ts': spec(`const t = test.extend<{ res: string }>({
  res: async ({}, use) => { log('setup'); await use('r'); log('teardown') },
})
t('long', async ({ res }) => {
  writeFileSync(new URL('./worker.pid', import.meta.url), String(process.pid))
  await new Promise(r => setTimeout(r, 50000))
})
t('after', () => {})`),
    })
    let pid = 0
    const run = runVt(['test'], { cwd: dir, onSpawn: p => (pid = p) })
    const workerPid = await readPid(path.join(dir, 'worker.pid'))
    process.kill(pid, 'SIGINT')
    const r = await run
    assert.equal(r.code, 130, r.stdout + r.stderr)
    const ev = readEvents(dir)
    assert.equal(endOf(ev, 'long')[0].status, 'interrupted')
    assert.equal(endOf(ev, 'after').length, 0, 'nothing new starts after Ctrl-C')
    assert.equal(ev.at(-1)?.status, 'interrupted')
    assert.deepEqual(readFileSync(path.join(dir, 'log.txt'), 'utf8').split('\n').filter(Boolean), ['setup', 'teardown'])
    assert.equal(alive(workerPid), false)
  })

  test('a second Ctrl-C kills a worker whose teardown hangs', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config('timeout: 60000'),
      'h.vt.ts': spec(`const t = test.extend<{ res: string }>({
  res: async ({}, use) => { await use('r'); log('teardown hangs'); await new Promise(r => setTimeout(r, 60000)) },
})
t('long', async ({ res }) => {
  writeFileSync(new URL('./worker.pid', import.meta.url), String(process.pid))
  await new Promise(r => setTimeout(r, 60000))
})`),
    })
    let pid = 0
    const run = runVt(['test'], { cwd: dir, onSpawn: p => (pid = p) })
    const workerPid = await readPid(path.join(dir, 'worker.pid'))
    process.kill(pid, 'SIGINT')
    await waitFor('teardown to begin', () => existsSync(path.join(dir, 'log.txt')))
    process.kill(pid, 'SIGINT')
    const r = await run
    assert.equal(r.code, 130)
    await waitFor('the worker to be gone', () => !alive(workerPid), 5000)
  })

  test('globalTimeout interrupts the run with status timedout', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config('timeout: 60000'),
      'g.vt.ts': spec(`test('forever', async () => { await new Promise(r => setTimeout(r, 60000)) })`),
    })
    const r = await runVt(['test', '--global-timeout', '1500'], { cwd: dir })
    assert.equal(r.code, 1)
    const ev = readEvents(dir)
    assert.equal(endOf(ev, 'forever')[0].status, 'interrupted')
    assert.equal(ev.at(-1)?.status, 'timedout')
  })
})

describe('planning with the real loader', () => {
  test('a file that fails to load is reported with file:line and the other files still run', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config(),
      'bad.vt.ts': spec(`test('broken', () => {\n  const x = ;\n})`),
      'good.vt.ts': spec(`test('fine', () => {})`),
    })
    const r = await runVt(['test'], { cwd: dir })
    assert.equal(r.code, 1)
    const ev = readEvents(dir)
    assert.match(ev.find(e => e.type === 'error')!.message, /bad\.vt\.ts:6/)
    assert.equal(endOf(ev, 'fine')[0].status, 'passed')
  })

  test('tests of a project whose dependency failed are skipped', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config(`projects: [
  { name: 'setup', testMatch: 'setup.vt.ts' },
  { name: 'main', dependencies: ['setup'], testIgnore: 'setup.vt.ts' },
]`),
      'setup.vt.ts': spec(`test('prepare', () => { if (process.env.FAIL) throw new Error('setup broke') })`),
      'm.vt.ts': spec(`test('uses setup', () => {})`),
    })
    const ok = await runVt(['test', '--project', 'main'], { cwd: dir })
    assert.equal(ok.code, 0, ok.stderr)
    assert.deepEqual(
      ends(readEvents(dir)).map(e => `${e.project}:${e.title}:${e.status}`),
      ['setup:prepare:passed', 'main:uses setup:passed'],
    )
    const failDir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': readFileSync(path.join(dir, 'vt.config.ts'), 'utf8'),
      'setup.vt.ts': readFileSync(path.join(dir, 'setup.vt.ts'), 'utf8'),
      'm.vt.ts': readFileSync(path.join(dir, 'm.vt.ts'), 'utf8'),
    })
    const r = await runVt(['test'], { cwd: failDir, env: { FAIL: '1' } })
    assert.equal(r.code, 1)
    const [skipped] = endOf(readEvents(failDir), 'uses setup')
    assert.equal(skipped.status, 'skipped')
    assert.match(skipped.annotations[0].description, /dependency project "setup" failed/)
  })

  test('--forbid-only lists the focused tests and fails; without it only they run', async () => {
    const files = {
      'events.ts': eventsReporter,
      'vt.config.ts': config(),
      'o.vt.ts': spec(`test.only('focused', () => {})\ntest('other', () => {})`),
      'p.vt.ts': spec(`test('elsewhere', () => {})`),
    }
    const dir = makeProject(files)
    const r = await runVt(['test', '--forbid-only'], { cwd: dir })
    assert.equal(r.code, 1)
    const ev = readEvents(dir)
    assert.match(ev.find(e => e.type === 'error')!.message, /o\.vt\.ts:5:\d+\s+test\.only\("focused"\)/)
    assert.equal(ends(ev).length, 0)
    const dir2 = makeProject(files)
    assert.equal((await runVt(['test'], { cwd: dir2 })).code, 0)
    assert.deepEqual(
      ends(readEvents(dir2)).map(e => e.title),
      ['focused'],
    )
  })

  test('--repeat-each runs every test n times with distinct ids', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config(),
      'r.vt.ts': spec(`test('again', () => {})`),
    })
    const r = await runVt(['test', '--repeat-each', '3'], { cwd: dir })
    assert.equal(r.code, 0, r.stderr)
    const e = endOf(readEvents(dir), 'again')
    assert.deepEqual(
      e.map(x => x.repeatEachIndex),
      [0, 1, 2],
    )
    assert.equal(new Set(e.map(x => x.id)).size, 3)
  })

  test('shards of a real project partition its tests, and a shard runs exactly its listed tests', async () => {
    const files: Record<string, string> = { 'events.ts': eventsReporter, 'vt.config.ts': config() }
    for (let f = 0; f < 7; f++) {
      const tests = Array.from({ length: (f % 3) + 1 }, (_, i) => `test('f${f} t${i}', () => {})`).join('\n')
      files[`f${f}.vt.ts`] = spec(f === 3 ? `test.describe.serial('ser', () => {\n${tests}\n})` : tests)
    }
    const dir = makeProject(files)
    const listed = async (args: string[]) => {
      const r = await runVt(['test', '--list', ...args], { cwd: dir })
      assert.equal(r.code, 0, r.stderr)
      return r.stdout.split('\n').filter(l => l.startsWith('  '))
    }
    const all = await listed([])
    assert.equal(all.length, 13)
    const shards = [
      await listed(['--shard', '1/3']),
      await listed(['--shard', '2/3']),
      await listed(['--shard', '3/3']),
    ]
    assert.deepEqual(shards.flat(), all)
    const serial = shards.filter(s => s.some(l => l.includes('ser ›')))
    assert.equal(serial.length, 1, 'a serial describe is not split across shards')
    const r = await runVt(['test', '--shard', '2/3'], { cwd: dir })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(ends(readEvents(dir)).length, shards[1].length)
  })

  test('a project whose cluster cannot start reports it and the other projects still run', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config(`projects: [
  { name: 'plain' },
  { name: 'remote', cluster: { hosts: [{ name: 'gone', url: 'ws://127.0.0.1:9' }], token: { value: 'x' } } },
]`),
      'a.vt.ts': spec(`test('runs', () => {})`),
    })
    const r = await runVt(['test'], { cwd: dir })
    assert.equal(r.code, 1)
    const ev = readEvents(dir)
    assert.match(ev.find(e => e.type === 'error')!.message, /could not start the cluster of project "remote"/)
    assert.deepEqual(
      ends(ev).map(e => `${e.project}:${e.status}`),
      ['plain:passed'],
    )
  })

  test('custom reporters get rootDir, outputDir and configDir besides their options', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': `export default { reporter: [['./events.ts', { mine: 1 }]] }\n`,
      'a.vt.ts': spec(`test('x', () => {})`),
    })
    await runVt(['test'], { cwd: dir })
    assert.deepEqual(readEvents(dir)[0].options, ['configDir', 'mine', 'outputDir', 'rootDir'])
  })

  test('globalSetup runs first (its env reaches workers), its returned teardown and globalTeardown run last', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config("globalSetup: './setup.ts', globalTeardown: './teardown.ts'"),
      'setup.ts': `import { appendFileSync } from 'node:fs'
export default async function (config) {
  appendFileSync(new URL('./log.txt', import.meta.url), 'setup ' + config.workers + '\\n')
  process.env.FROM_SETUP = 'hello'
  return () => appendFileSync(new URL('./log.txt', import.meta.url), 'returned teardown\\n')
}
`,
      'teardown.ts': `import { appendFileSync } from 'node:fs'
export default () => appendFileSync(new URL('./log.txt', import.meta.url), 'global teardown\\n')
`,
      'a.vt.ts': spec(`test('sees setup', () => { log('test ' + process.env.FROM_SETUP) })`),
    })
    const r = await runVt(['test', '--output', 'out'], { cwd: dir })
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.deepEqual(readFileSync(path.join(dir, 'log.txt'), 'utf8').split('\n').filter(Boolean), [
      'setup 1',
      'test hello',
      'returned teardown',
      'global teardown',
    ])
    assert.ok(existsSync(path.join(dir, 'out', '.last-run.json')), '--output moves .last-run.json')
  })

  test('a failing globalSetup is reported and no test runs', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config("globalSetup: './setup.ts'"),
      'setup.ts': "export default () => { throw new Error('no database') }\n",
      'a.vt.ts': spec(`test('never', () => {})`),
    })
    const r = await runVt(['test'], { cwd: dir })
    assert.equal(r.code, 1)
    const ev = readEvents(dir)
    assert.match(ev.find(e => e.type === 'error')!.message, /globalSetup.*no database/)
    assert.equal(ends(ev).length, 0)
  })

  test('a project cluster starts before its first test and stops after its last one', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config(`projects: [
  { name: 'clustered', cluster: { hosts: 1, isolation: 'none' }, testMatch: 'c.vt.ts' },
  { name: 'after', dependencies: ['clustered'], testMatch: 'd.vt.ts' },
]`),
      'c.vt.ts': `import { test } from VT_IMPORT
import { writeFileSync } from 'node:fs'
import { workerContext } from ${JSON.stringify(path.join(repoRoot, 'src/runner/workerContext.ts'))}
test('sees the cluster', () => {
  const url = workerContext().cluster!.hosts[0].url
  writeFileSync(new URL('./url.txt', import.meta.url), url)
})
`,
      'd.vt.ts': `import { test, expect } from VT_IMPORT
import { readFileSync } from 'node:fs'
import net from 'node:net'
test('cluster of the previous project is gone', async () => {
  const url = new URL(readFileSync(new URL('./url.txt', import.meta.url), 'utf8'))
  const refused = await new Promise(resolve => {
    const s = net.connect(Number(url.port), url.hostname)
    s.on('connect', () => { s.destroy(); resolve(false) })
    s.on('error', () => resolve(true))
  })
  expect(refused).toBe(true)
})
`,
    })
    const r = await runVt(['test'], { cwd: dir })
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.deepEqual(
      ends(readEvents(dir)).map(e => `${e.title}:${e.status}`),
      ['sees the cluster:passed', 'cluster of the previous project is gone:passed'],
    )
  })

  test('Ctrl-C stops the project cluster too', async () => {
    const dir = makeProject({
      'events.ts': eventsReporter,
      'vt.config.ts': config(
        `timeout: 60000, projects: [{ name: 'clustered', cluster: { hosts: 1, isolation: 'none' } }]`,
      ),
      'c.vt.ts': `import { test } from VT_IMPORT
import { writeFileSync } from 'node:fs'
import { workerContext } from ${JSON.stringify(path.join(repoRoot, 'src/runner/workerContext.ts'))}
test('waits', async () => {
  writeFileSync(new URL('./url.txt', import.meta.url), workerContext().cluster!.hosts[0].url)
  await new Promise(r => setTimeout(r, 60000))
})
`,
    })
    let pid = 0
    let exited: VtResult | undefined
    const run = runVt(['test'], { cwd: dir, onSpawn: p => (pid = p) }).then(r => (exited = r))
    try {
      await waitFor('the test to start', () => {
        if (exited) throw new Error(`vt exited before the test started:\n${exited.stdout}${exited.stderr}`)
        return nonEmpty(path.join(dir, 'url.txt'))
      })
    } finally {
      if (!exited && !nonEmpty(path.join(dir, 'url.txt'))) process.kill(pid, 'SIGKILL')
    }
    const url = new URL(readFileSync(path.join(dir, 'url.txt'), 'utf8'))
    assert.equal(await portOpen(url), true)
    process.kill(pid, 'SIGINT')
    const r = await run
    assert.equal(r.code, 130, r.stdout + r.stderr)
    assert.equal(await portOpen(url), false, 'the agent is gone after Ctrl-C')
  })
})

function portOpen(url: URL): Promise<boolean> {
  return new Promise(resolve => {
    const s = net.connect(Number(url.port), url.hostname)
    s.on('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}
