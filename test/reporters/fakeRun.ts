// Builds a Suite/TestCase tree from the real model and drives a reporter through the events of a synthetic run:
// a passing, a failing (code frame + stack), a flaky, a skipped, an expected-to-fail and a timed-out test.
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FullConfig, FullProject } from '../../src/config/types.ts'
import { computeTestId, Suite, TestCase } from '../../src/runner/model.ts'
import type { FullResult, Reporter, TestError, TestResult, TestStep } from '../../src/runner/reporterApi.ts'

export const rootDir = '/proj'

export function project(name: string): FullProject {
  return {
    id: name || 'project-0',
    name,
    use: {},
    testDir: rootDir,
    testMatch: '**/*.vt.ts',
    testIgnore: [],
    outputDir: path.join(rootDir, 'test-results'),
    retries: 1,
    repeatEach: 1,
    timeout: 1000,
    fullyParallel: false,
    dependencies: [],
    grep: /.*/,
    grepInvert: null,
    metadata: {},
  }
}

export function config(projects: FullProject[]): FullConfig {
  return {
    configFile: path.join(rootDir, 'vt.config.ts'),
    rootDir,
    projects,
    reporter: [['list']],
    workers: 2,
    globalTimeout: 0,
    maxFailures: 0,
    forbidOnly: false,
    failOnFlakyTests: false,
    reuseWorkerAfterFailure: false,
    globalSetup: null,
    globalTeardown: null,
    expectTimeout: 5000,
    fullyParallel: false,
    quiet: false,
    shard: null,
    passWithNoTests: false,
    preserveOutput: 'always',
    redact: [],
    version: '0.1.0',
    metadata: {},
    replaySeed: null,
    replayPath: null,
  }
}

export interface FakeTree {
  root: Suite
  tests: Record<string, TestCase>
}

/** root → project → file math.vt.ts → describe 'math' → tests. */
export function buildTree(projectName = 'unit'): FakeTree {
  const root = new Suite('', 'root')
  const p = new Suite(projectName, 'project')
  p._project = project(projectName)
  root._addSuite(p)
  const file = new Suite('math.vt.ts', 'file')
  file._file = path.join(rootDir, 'math.vt.ts')
  file.location = { file: file._file, line: 0, column: 0 }
  p._addSuite(file)
  const describe = new Suite('math <&> "quotes"', 'describe')
  describe.location = { file: file._file, line: 3, column: 1 }
  file._addSuite(describe)
  const tests: Record<string, TestCase> = {}
  let line = 4
  for (const title of ['adds', 'divides', 'is flaky', 'is skipped', 'expected failure', 'hangs']) {
    const t = new TestCase(title, () => {}, undefined, { file: file._file, line: line++, column: 3 })
    t.retries = 1
    t.timeout = 1000
    describe._addTest(t)
    t.id = computeTestId(p._project.id, 'math.vt.ts', ['math', title], 0)
    tests[title] = t
  }
  tests['expected failure'].expectedStatus = 'failed'
  tests['is skipped'].expectedStatus = 'skipped'
  tests['is skipped'].annotations.push({ type: 'skip', description: 'not on this host' })
  return { root, tests }
}

export function newResult(retry: number): TestResult {
  return {
    retry,
    workerIndex: retry,
    parallelIndex: 0,
    startTime: new Date('2026-01-01T00:00:00Z'),
    duration: 0,
    status: 'passed',
    errors: [],
    attachments: [],
    annotations: [],
    stdout: [],
    stderr: [],
    steps: [],
  }
}

export function makeStep(title: string, category: string, parent?: TestStep, error?: TestError): TestStep {
  const step: TestStep = {
    title,
    category,
    parent,
    startTime: new Date('2026-01-01T00:00:00Z'),
    duration: 5,
    error,
    steps: [],
    titlePath: () => [...(parent ? parent.titlePath() : []), title],
  }
  return step
}

export const divideError: TestError = {
  message: 'Error: expect(received).toBe(expected)\n\nExpected: 3\nReceived: \u001b[31m2\u001b[39m\u0001',
  stack: [
    'Error: expect(received).toBe(expected)',
    `    at /proj/math.vt.ts:5:15`,
    `    at ${fileURLToPath(new URL('../../src/runner/worker/run.ts', import.meta.url))}:10:3`,
    '    at node:internal/process/task_queues:95:5',
    '    at /proj/node_modules/expect/build/index.js:1:1',
  ].join('\n'),
  snippet: '  4 | test("divides", () => {\n> 5 |   expect(6 / 3).toBe(3)\n    |                 ^\n  6 | })',
  location: { file: '/proj/math.vt.ts', line: 5, column: 17 },
}

/** Plays a run through the reporter; returns the tree so tests can check what it printed or wrote. */
export async function playRun(reporter: Reporter, tree = buildTree()): Promise<FakeTree> {
  const { root, tests } = tree
  reporter.onBegin?.(config([root.suites[0]._project!]), root)
  const run = (t: TestCase, retry: number, status: TestResult['status'], extra: (r: TestResult) => void = () => {}) => {
    const r = newResult(retry)
    t.results.push(r)
    reporter.onTestBegin?.(t, r)
    extra(r)
    r.status = status
    r.duration = 120 + retry
    reporter.onTestEnd?.(t, r)
  }
  run(tests.adds, 0, 'passed', r => {
    const step = makeStep('compute', 'test.step')
    r.steps.push(step)
    reporter.onStepBegin?.(tests.adds, r, step)
    const inner = makeStep('inner', 'test.step', step)
    step.steps.push(inner)
    reporter.onStepBegin?.(tests.adds, r, inner)
    reporter.onStepEnd?.(tests.adds, r, inner)
    reporter.onStepEnd?.(tests.adds, r, step)
    r.stdout.push('adds says hi\n')
    reporter.onStdOut?.('adds says hi\n', tests.adds, r)
  })
  for (const retry of [0, 1]) {
    run(tests.divides, retry, 'failed', r => {
      r.errors.push(divideError)
      r.error = divideError
      const step = makeStep('check quotient', 'test.step')
      r.steps.push(step)
      reporter.onStepBegin?.(tests.divides, r, step)
      step.error = divideError
      reporter.onStepEnd?.(tests.divides, r, step)
      const chunk = Buffer.from('division trouble\n')
      r.stderr.push(chunk)
      reporter.onStdErr?.(chunk, tests.divides, r)
      r.attachments.push({ name: 'trace.txt', contentType: 'text/plain', body: Buffer.from('trace body') })
      r.attachments.push({ name: 'disk', contentType: 'application/octet-stream', path: '/proj/test-results/disk.img' })
    })
  }
  run(tests['is flaky'], 0, 'failed', r => r.errors.push({ message: 'Error: first time fails' }))
  run(tests['is flaky'], 1, 'passed')
  run(tests['is skipped'], 0, 'skipped', r => r.annotations.push({ type: 'skip', description: 'not on this host' }))
  run(tests['expected failure'], 0, 'failed', r => r.errors.push({ message: 'Error: known bug' }))
  for (const retry of [0, 1])
    run(tests.hangs, retry, 'timedOut', r => r.errors.push({ message: 'Test timeout of 1000ms exceeded.' }))
  reporter.onError?.({
    message: 'Error: worker teardown failed\u0007',
    location: { file: '/proj/fixtures.ts', line: 9, column: 2 },
  })
  const result: FullResult = { status: 'failed', startTime: new Date('2026-01-01T00:00:00Z'), duration: 1234 }
  await reporter.onEnd?.(result)
  await reporter.onExit?.()
  return tree
}

/** A writable that keeps what was written. */
export function memoryStream(tty = false): {
  write(s: string): boolean
  text(): string
  isTTY: boolean
  columns: number
  rows: number
} {
  const chunks: string[] = []
  return {
    isTTY: tty,
    columns: 120,
    rows: 40,
    write(s: string) {
      chunks.push(s)
      return true
    },
    text: () => chunks.join(''),
  }
}
