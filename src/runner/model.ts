// The test tree. Loading a spec file (in the main process to plan, and again in a worker to run) builds the
// same tree, so a test is found in the worker by its id. Reporters see these classes read-only.
import { createHash } from 'node:crypto'
import type { FullProject } from '../config/types.ts'
import type { PropDeclaration } from './prop/declare.ts'
import type { Location, TestError, TestResult } from './results.ts'

export type SuiteType = 'root' | 'project' | 'file' | 'describe'
export type HookType = 'beforeAll' | 'afterAll' | 'beforeEach' | 'afterEach'
export type DescribeMode = 'default' | 'serial' | 'parallel'
export type ModifierType = 'skip' | 'fixme' | 'fail' | 'slow'

export interface Annotation {
  type: string
  description?: string
}

export interface Hook {
  type: HookType
  title: string
  fn: (...args: any[]) => unknown
  location: Location
}

/**
 * A modifier declared at describe level or with a condition callback: `test.skip(({ browserName }) => ...)`.
 * `fn` receives fixture values (worker-scoped only for describe-level modifiers) and returns whether it applies.
 */
export interface Modifier {
  type: ModifierType
  fn?: (fixtures: any) => unknown
  description?: string
  location: Location
}

/** One `test.use({...})` call, or the fixtures of one `test.extend({...})` call. */
export interface FixturesWithLocation {
  fixtures: Record<string, unknown>
  location: Location
}

export class Suite {
  title: string
  type: SuiteType
  parent?: Suite
  location?: Location
  readonly entries: (Suite | TestCase)[] = []
  readonly hooks: Hook[] = []
  readonly uses: FixturesWithLocation[] = []
  /** test.use({ seed }) here: the seed of the properties inside. */
  _seed?: number
  readonly modifiers: Modifier[] = []
  readonly annotations: Annotation[] = []
  /** Tags of this describe (`@tag` in its title or `{ tag }` details); tests inherit them. */
  readonly tags: string[] = []
  mode: DescribeMode = 'default'
  retries?: number
  timeout?: number
  only = false
  /** Set on project suites (and inherited by lookup through `project()`). */
  _project?: FullProject
  /** Set on file suites: absolute path. */
  _file?: string
  /** Set on file suites when the file failed to load. */
  _loadError?: TestError

  constructor(title: string, type: SuiteType) {
    this.title = title
    this.type = type
  }

  get suites(): Suite[] {
    return this.entries.filter((e): e is Suite => e instanceof Suite)
  }

  get tests(): TestCase[] {
    return this.entries.filter((e): e is TestCase => e instanceof TestCase)
  }

  _addSuite(suite: Suite): void {
    suite.parent = this
    this.entries.push(suite)
  }

  _addTest(test: TestCase): void {
    test.parent = this
    this.entries.push(test)
  }

  /** Title path from the project name down to this suite (the root contributes nothing). */
  titlePath(): string[] {
    const path = this.parent ? this.parent.titlePath() : []
    if (this.type !== 'root') path.push(this.title)
    return path
  }

  allTests(): TestCase[] {
    const out: TestCase[] = []
    const visit = (suite: Suite) => {
      for (const entry of suite.entries) {
        if (entry instanceof Suite) visit(entry)
        else out.push(entry)
      }
    }
    visit(this)
    return out
  }

  project(): FullProject | undefined {
    return this._project ?? this.parent?.project()
  }

  /** Walks up to the file suite. */
  fileSuite(): Suite | undefined {
    if (this.type === 'file') return this
    return this.parent?.fileSuite()
  }
}

export class TestCase {
  title: string
  location: Location
  parent!: Suite
  fn: (...args: any[]) => unknown
  /** Stable across processes: hash of project id, file path relative to rootDir, title path, repeat index. */
  id = ''
  readonly annotations: Annotation[] = []
  /** `@tag`s from the title, `{ tag }` details and enclosing describes. */
  readonly tags: string[] = []
  /** Declared with `test.fail()`: the test is expected to fail. */
  expectedStatus: 'passed' | 'failed' | 'skipped' = 'passed'
  timeout = 0
  retries = 0
  repeatEachIndex = 0
  only = false
  readonly results: TestResult[] = []
  /** Modifiers given at declaration time (`test.skip('title', fn)`, `test.fixme(...)`). */
  readonly modifiers: Modifier[] = []
  /** The test type (`test` object) the test was declared with: carries the fixture registrations. */
  _testType: unknown
  /** Digest of the test's worker-scoped fixture pool + project: tests with equal hashes may share a worker. */
  _workerHash = ''
  /** Digest of the whole fixture pool, used to validate that worker and main built the same tree. */
  _poolDigest = ''
  /** Set for `test.prop()`: the arbitraries and options; `fn` is then `(fixtures, values, testInfo)`. */
  _prop?: PropDeclaration

  constructor(title: string, fn: (...args: any[]) => unknown, testType: unknown, location: Location) {
    this.title = title
    this.fn = fn
    this._testType = testType
    this.location = location
  }

  titlePath(): string[] {
    return [...this.parent.titlePath(), this.title]
  }

  /** Outcome over all results: skipped, expected, unexpected, or flaky (unexpected then expected). */
  outcome(): 'skipped' | 'expected' | 'unexpected' | 'flaky' {
    const results = this.results.filter(r => r.status !== 'interrupted' || this.results.length === 1)
    if (results.length === 0) return 'skipped'
    if (results.every(r => r.status === 'skipped')) return 'skipped'
    const expected = (r: TestResult) => r.status === 'skipped' || r.status === this.expectedStatus
    const last = results[results.length - 1]
    if (results.every(expected)) return 'expected'
    if (expected(last) && results.some(r => !expected(r))) return 'flaky'
    return 'unexpected'
  }

  ok(): boolean {
    const outcome = this.outcome()
    return outcome === 'expected' || outcome === 'flaky' || outcome === 'skipped'
  }
}

/** Computes the id every process agrees on. `relativeFile` uses forward slashes. */
export function computeTestId(
  projectId: string,
  relativeFile: string,
  titlePathInFile: string[],
  repeatEachIndex: number,
): string {
  const h = createHash('sha1')
  h.update(JSON.stringify([projectId, relativeFile, titlePathInFile, repeatEachIndex]))
  return h.digest('hex').slice(0, 20)
}
