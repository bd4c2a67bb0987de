// Model-based check of the dispatcher with the real worker: fast-check generates small spec projects (tests that
// pass, fail, pass on retry, crash their worker once, or skip; any number of workers, retries, parallel mode) and
// the results every test gets, the exit code and the absence of leftover workers must match the model.
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { after, test } from 'node:test'
import fc from 'fast-check'
import { seeded } from '../helpers/property.ts'
import { cleanupProjects, eventsReporter, makeProject, readEvents, runVt } from './helpers.ts'

after(cleanupProjects)

type Behaviour = 'pass' | 'fail' | 'flaky' | 'crash-once' | 'skip'

const behaviours: Behaviour[] = ['pass', 'fail', 'flaky', 'crash-once', 'skip']

function body(b: Behaviour): string {
  switch (b) {
    case 'pass':
      return '{}'
    case 'fail':
      return "{ throw new Error('always fails') }"
    case 'flaky':
      return "{ if (test.info().retry === 0) throw new Error('first try fails') }"
    case 'crash-once':
      return '{ if (test.info().retry === 0) process.exit(9) }'
    case 'skip':
      return "{ test.skip(true, 'not today') }"
  }
}

function statusAt(b: Behaviour, attempt: number): string {
  if (b === 'pass') return 'passed'
  if (b === 'skip') return 'skipped'
  if (b === 'fail') return 'failed'
  return attempt === 0 ? 'failed' : 'passed'
}

/**
 * A serial describe: tests run in order; after the first failure the rest of the attempt is skipped, and the
 * whole group runs again while retries last.
 */
function expectedSerial(tests: Behaviour[], retries: number): string[][] {
  const results: string[][] = tests.map(() => [])
  for (let attempt = 0; ; attempt++) {
    let failed = false
    tests.forEach((b, i) => {
      const status = failed ? 'skipped' : statusAt(b, attempt)
      results[i].push(status)
      if (status === 'failed') failed = true
    })
    if (!failed || attempt >= retries) return results
  }
}

/** The statuses a test's results must have, in order. */
function expectedStatuses(b: Behaviour, retries: number): string[] {
  switch (b) {
    case 'pass':
      return ['passed']
    case 'skip':
      return ['skipped']
    case 'fail':
      return Array(retries + 1).fill('failed')
    case 'flaky':
    case 'crash-once':
      return retries > 0 ? ['failed', 'passed'] : ['failed']
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const suiteArb = fc.record({
  files: fc.array(
    fc.record({
      tests: fc.array(fc.constantFrom(...behaviours), { minLength: 1, maxLength: 4 }),
      serial: fc.boolean(),
    }),
    { minLength: 1, maxLength: 4 },
  ),
  workers: fc.integer({ min: 1, max: 3 }),
  retries: fc.integer({ min: 0, max: 2 }),
  fullyParallel: fc.boolean(),
  maxFailures: fc.constantFrom(0, 0, 1, 2),
})

test('every test gets the results the model predicts, the exit code matches, no worker survives', async t => {
  await fc.assert(
    fc.asyncProperty(suiteArb, async ({ files, workers, retries, fullyParallel, maxFailures }) => {
      const project: Record<string, string> = {
        'events.ts': eventsReporter,
        'vt.config.ts': `export default { reporter: [['./events.ts']], workers: ${workers}, retries: ${retries}, fullyParallel: ${fullyParallel}, maxFailures: ${maxFailures} }\n`,
      }
      files.forEach(({ tests, serial }, f) => {
        const decls = tests.map((b, t) => `test('f${f} t${t} ${b}', () => ${body(b)})`)
        project[`f${f}.vt.ts`] = [
          'import { test } from VT_IMPORT',
          "import { writeFileSync, mkdirSync } from 'node:fs'",
          "const pids = new URL('./pids/', import.meta.url)",
          'mkdirSync(pids, { recursive: true })',
          'writeFileSync(new URL(String(process.pid), pids), "")',
          ...(serial ? ["test.describe.serial('serial', () => {", ...decls, '})'] : decls),
        ].join('\n')
      })
      const dir = makeProject(project)
      const r = await runVt(['test'], { cwd: dir })
      const events = readEvents(dir)
      // The model's results per test; with maxFailures the run may stop once that many tests failed for good.
      const wants = new Map<string, { want: string[]; b: Behaviour }>()
      for (const [f, { tests, serial }] of files.entries()) {
        const serialWant = serial ? expectedSerial(tests, retries) : undefined
        for (const [t, b] of tests.entries())
          wants.set(`f${f} t${t} ${b}`, { b, want: serialWant ? serialWant[t] : expectedStatuses(b, retries) })
      }
      const finalFailures = [...wants.values()].filter(w => w.want.at(-1) === 'failed').length
      const mayStop = maxFailures > 0 && finalFailures >= maxFailures
      const where = `(retries ${retries}, workers ${workers}, maxFailures ${maxFailures})`
      let actualFailures = 0
      for (const [title, { b, want }] of wants) {
        const statuses = events.filter(e => e.type === 'testEnd' && e.title === title).map(e => e.status)
        if (!mayStop) assert.deepEqual(statuses, want, `${title} ${where}`)
        else {
          // A prefix of the model's results, the last of which may have been interrupted.
          const done = statuses.at(-1) === 'interrupted' ? statuses.slice(0, -1) : statuses
          assert.deepEqual(done, want.slice(0, done.length), `${title} ${where}: ${statuses.join(',')}`)
        }
        if (statuses.length === want.length && statuses.at(-1) === 'failed') actualFailures++
        if (b === 'crash-once' && statuses[0] === 'failed') {
          const first = events.find(e => e.type === 'testEnd' && e.title === title)
          assert.match(first!.errors[0], /worker process exited unexpectedly \(code 9\)/)
        }
      }
      if (mayStop) assert.ok(actualFailures >= maxFailures, `${actualFailures} final failures ${where}`)
      assert.equal(r.code, finalFailures > 0 ? 1 : 0, r.stdout + r.stderr)
      const pids = readdirSync(path.join(dir, 'pids')).map(Number)
      assert.ok(pids.length > 0)
      for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} is still running`)
    }),
    seeded(t, { numRuns: Number(process.env.VT_MODEL_RUNS ?? 5), endOnFailure: true }),
  )
})
