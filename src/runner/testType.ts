// The `test` object of spec files: declarations (test, describe, hooks, modifiers, use, extend) build the
// Suite tree of the file being loaded; runtime calls (test.step, test.info, test.skip() inside a test) go to
// the running test's TestInfo. Modeled on Playwright Test's testType.ts.
// Over 400 lines on purpose: it is the whole spec API surface (types and TestTypeImpl), kept in one file as
// Playwright keeps it, so that the public `test` reads in one place.
import type { FullConfig, FullProject } from '../config/types.ts'
import { captureLocation, formatLocation } from './errors.ts'
import {
  type Annotation,
  type FixturesWithLocation,
  type HookType,
  type ModifierType,
  Suite,
  TestCase,
} from './model.ts'
import {
  checkSeed,
  declareProp,
  type PropArbitraries,
  type PropDeclaration,
  type PropOptions,
  type PropValues,
} from './prop/declare.ts'
import type { Location, TestError, TestStatus } from './reporterApi.ts'
import {
  currentDebugHook,
  currentDescribeSuite,
  currentlyLoadingFileSuite,
  currentTestInfo,
  type RuntimeTestInfo,
  setCurrentDescribeSuite,
} from './worker/globals.ts'
import { maybeWorkerContext } from './workerContext.ts'

// ---------------------------------------------------------------- public types

export type KeyValue = { [key: string]: any }

export interface TestDetails {
  tag?: string | string[]
  annotation?: Annotation | Annotation[]
}

export interface WorkerInfo {
  config: FullConfig
  project: FullProject
  workerIndex: number
  parallelIndex: number
}

export interface TestInfo extends WorkerInfo {
  title: string
  /** Titles from the file (relative path) down to the test. */
  titlePath: string[]
  file: string
  line: number
  column: number
  retry: number
  repeatEachIndex: number
  annotations: Annotation[]
  tags: string[]
  expectedStatus: TestStatus
  status?: TestStatus
  timeout: number
  errors: TestError[]
  error?: TestError
  /** Milliseconds since the test started (final once the test ended). */
  duration: number
  /** Unique per test and retry, under the project's outputDir. Created on first use. */
  outputDir: string
  outputPath(...segments: string[]): string
  setTimeout(ms: number): void
  skip(condition?: boolean, description?: string): void
  skip(description?: string): void
  fixme(condition?: boolean, description?: string): void
  fixme(description?: string): void
  fail(condition?: boolean, description?: string): void
  fail(description?: string): void
  slow(condition?: boolean, description?: string): void
  slow(description?: string): void
  attach(name: string, options: { path?: string; body?: string | Buffer; contentType?: string }): Promise<void>
}

export type Use<R> = (value: R) => Promise<void>
export type TestFixtureValue<R, Args extends KeyValue> =
  | Exclude<R, Function>
  | ((args: Args, use: Use<R>, testInfo: TestInfo) => unknown)
export type WorkerFixtureValue<R, Args extends KeyValue> =
  | Exclude<R, Function>
  | ((args: Args, use: Use<R>, workerInfo: WorkerInfo) => unknown)
export interface FixtureOptionsBase {
  timeout?: number
  title?: string
  box?: boolean
}

/**
 * What `test.extend<T, W>()` accepts: new test fixtures T and worker fixtures W, and overrides of the
 * fixtures the base test already has (PT test-scoped, PW worker-scoped). A function's first parameter is
 * typed with every fixture it may depend on.
 */
export type Fixtures<
  T extends KeyValue = {},
  W extends KeyValue = {},
  PT extends KeyValue = {},
  PW extends KeyValue = {},
> = {
  [K in keyof PW]?:
    | WorkerFixtureValue<PW[K], W & PW>
    | [WorkerFixtureValue<PW[K], W & PW>, FixtureOptionsBase & { scope: 'worker' }]
} & {
  [K in keyof PT]?:
    | TestFixtureValue<PT[K], T & W & PT & PW>
    | [TestFixtureValue<PT[K], T & W & PT & PW>, FixtureOptionsBase & { scope: 'test' }]
} & {
  [K in keyof W]?: [
    WorkerFixtureValue<W[K], W & PW>,
    FixtureOptionsBase & { scope: 'worker'; auto?: boolean; option?: boolean },
  ]
} & {
  [K in keyof T]?:
    | TestFixtureValue<T[K], T & W & PT & PW>
    | [
        TestFixtureValue<T[K], T & W & PT & PW>,
        FixtureOptionsBase & { scope?: 'test'; auto?: boolean; option?: boolean },
      ]
}

export type TestBody<Args> = (args: Args, testInfo: TestInfo) => unknown
export type ConditionFn<Args> = (args: Args) => boolean

export interface TestDeclaration<Args> {
  (title: string, body: TestBody<Args>): void
  (title: string, details: TestDetails, body: TestBody<Args>): void
}

/** test.skip / test.fixme / test.fail: declare a test, or mark the describe, or mark the running test. */
export interface ModifierFunction<Args> extends TestDeclaration<Args> {
  (): void
  (condition: boolean, description?: string): void
  (callback: ConditionFn<Args>, description?: string): void
}

export interface SlowFunction<Args> {
  (): void
  (condition: boolean, description?: string): void
  (callback: ConditionFn<Args>, description?: string): void
}

export interface SuiteFunction {
  (title: string, callback: () => void): void
  (callback: () => void): void
  (title: string, details: TestDetails, callback: () => void): void
}

export interface DescribeFunction extends SuiteFunction {
  only: SuiteFunction
  skip: SuiteFunction
  fixme: SuiteFunction
  serial: SuiteFunction & { only: SuiteFunction; skip: SuiteFunction }
  parallel: SuiteFunction & { only: SuiteFunction }
  configure(options: { mode?: 'default' | 'parallel' | 'serial'; retries?: number; timeout?: number }): void
}

export type HookFunction<Args, Info> = {
  (fn: (args: Args, info: Info) => unknown): void
  (title: string, fn: (args: Args, info: Info) => unknown): void
}

export interface StepOptions {
  /** Fails the step (and the test) when the body takes longer. */
  timeout?: number
  /** Hide the step's inner frames: errors point at the test.step() call. */
  box?: boolean
}

export interface TestType<TestArgs extends KeyValue, WorkerArgs extends KeyValue>
  extends TestDeclaration<TestArgs & WorkerArgs> {
  only: TestDeclaration<TestArgs & WorkerArgs>
  describe: DescribeFunction
  skip: ModifierFunction<TestArgs & WorkerArgs>
  fixme: ModifierFunction<TestArgs & WorkerArgs>
  fail: ModifierFunction<TestArgs & WorkerArgs>
  slow: SlowFunction<TestArgs & WorkerArgs>
  setTimeout(ms: number): void
  beforeEach: HookFunction<TestArgs & WorkerArgs, TestInfo>
  afterEach: HookFunction<TestArgs & WorkerArgs, TestInfo>
  /** Runs once per describe in a worker's group of tests: only worker fixtures are available. */
  beforeAll: HookFunction<WorkerArgs, TestInfo>
  afterAll: HookFunction<WorkerArgs, TestInfo>
  use(fixtures: Fixtures<{}, {}, TestArgs, WorkerArgs>): void
  step<T>(title: string, body: () => T | Promise<T>, options?: StepOptions): Promise<T>
  info(): TestInfo
  /**
   * Under `vt test --debug`: pauses the test here with its cluster and VMs alive, prints how to reach them
   * (`vt console`), and goes on when the user presses Enter. Without --debug it does nothing (and says so).
   */
  debug(): Promise<void>
  extend<T extends KeyValue, W extends KeyValue = {}>(
    fixtures: Fixtures<T, W, TestArgs, WorkerArgs>,
  ): TestType<TestArgs & T, WorkerArgs & W>
  /**
   * A property-based test (the shape of @fast-check/vitest): `body(fixtures, values, testInfo)` runs once per
   * generated case, each run with fresh test-scoped fixtures; a failure shrinks and prints seed, path, the
   * shrunk counterexample and the command that replays it.
   */
  prop<A extends PropArbitraries>(
    arbitraries: A,
    options?: PropOptions,
  ): (title: string, body: (args: TestArgs & WorkerArgs, values: PropValues<A>, testInfo: TestInfo) => unknown) => void
}

// ---------------------------------------------------------------- implementation

const testTypeSymbol = Symbol('vt.testType')

/** The implementation behind a `test` object; `fixtures` is the chain of `test.extend` registrations. */
export class TestTypeImpl {
  readonly fixtures: FixturesWithLocation[]
  readonly test: TestType<any, any>

  constructor(fixtures: FixturesWithLocation[]) {
    this.fixtures = fixtures
    const test: any = (...args: unknown[]) => this._createTest('default', captureLocation(), args)
    test[testTypeSymbol] = this
    test.only = (...args: unknown[]) => this._createTest('only', captureLocation(), args)
    test.skip = (...args: unknown[]) => this._modifier('skip', captureLocation(), args)
    test.fixme = (...args: unknown[]) => this._modifier('fixme', captureLocation(), args)
    test.fail = (...args: unknown[]) => this._modifier('fail', captureLocation(), args)
    test.slow = (...args: unknown[]) => this._modifier('slow', captureLocation(), args)
    const describe: any = (...args: unknown[]) => this._describe('default', captureLocation(), args)
    describe.only = (...args: unknown[]) => this._describe('only', captureLocation(), args)
    describe.skip = (...args: unknown[]) => this._describe('skip', captureLocation(), args)
    describe.fixme = (...args: unknown[]) => this._describe('fixme', captureLocation(), args)
    describe.serial = (...args: unknown[]) => this._describe('serial', captureLocation(), args)
    describe.serial.only = (...args: unknown[]) => this._describe('serial.only', captureLocation(), args)
    describe.serial.skip = (...args: unknown[]) => this._describe('serial.skip', captureLocation(), args)
    describe.parallel = (...args: unknown[]) => this._describe('parallel', captureLocation(), args)
    describe.parallel.only = (...args: unknown[]) => this._describe('parallel.only', captureLocation(), args)
    describe.configure = (options: unknown) => this._configure(captureLocation(), options)
    test.describe = describe
    for (const type of ['beforeEach', 'afterEach', 'beforeAll', 'afterAll'] as const)
      test[type] = (...args: unknown[]) => this._hook(type, captureLocation(), args)
    test.use = (fixtures: unknown) => this._use(captureLocation(), fixtures)
    test.setTimeout = (ms: unknown) => this._setTimeout(captureLocation(), ms)
    test.step = (title: unknown, body: unknown, options?: unknown) =>
      this._step(captureLocation(), title, body, options)
    test.info = () => {
      const info = currentTestInfo()
      if (!info) throw new Error('test.info() can only be called while a test is running')
      return info
    }
    test.debug = () => this._debug(captureLocation())
    test.extend = (fixtures: unknown) => this._extend(captureLocation(), fixtures)
    test.prop = (arbitraries: unknown, options?: unknown) => {
      const location = captureLocation()
      const prop = declareProp(arbitraries, options, location)
      return (title: unknown, body: unknown) => this._createTest('default', location, [title, body], prop)
    }
    this.test = test
  }

  private _declarationSuite(api: string, location: Location): Suite {
    if (currentTestInfo())
      throw new Error(`${api} cannot be called inside a test, hook or fixture (at ${formatLocation(location)})`)
    const suite = currentDescribeSuite()
    if (!suite || !currentlyLoadingFileSuite())
      throw new Error(
        `${api} can only be called at the top level of a spec file or inside test.describe() (at ${formatLocation(location)}).\n` +
          'Make sure the file is a spec (matched by testMatch) and is run with `vt test`, not imported by another module.',
      )
    return suite
  }

  private _createTest(
    type: 'default' | 'only' | 'skip' | 'fixme' | 'fail',
    location: Location,
    args: unknown[],
    prop?: PropDeclaration,
  ): void {
    const api = prop ? 'test.prop()()' : type === 'default' ? 'test()' : `test.${type}()`
    const suite = this._declarationSuite(api, location)
    const [title, second, third] = args
    if (typeof title !== 'string')
      throw new Error(`${api} expects a title string as its first argument (at ${formatLocation(location)})`)
    const details = typeof second === 'function' ? undefined : second
    const fn = typeof second === 'function' ? second : third
    if (typeof fn !== 'function')
      throw new Error(`${api} "${title}" expects a test function (at ${formatLocation(location)})`)
    if (details !== undefined && (typeof details !== 'object' || details === null))
      throw new Error(
        `${api} "${title}": details must be an object { tag, annotation } (at ${formatLocation(location)})`,
      )
    const test = new TestCase(title, fn as (...a: any[]) => unknown, this, location)
    test._prop = prop
    test.tags.push(...suiteTags(suite), ...titleTags(title), ...detailsTags(details as TestDetails, location))
    test.annotations.push(...detailsAnnotations(details as TestDetails, location))
    if (type === 'only') test.only = true
    if (type === 'skip' || type === 'fixme' || type === 'fail') {
      test.modifiers.push({ type, location })
      test.annotations.push({ type })
      test.expectedStatus = type === 'fail' ? 'failed' : 'skipped'
    }
    suite._addTest(test)
  }

  private _describe(
    type:
      | 'default'
      | 'only'
      | 'skip'
      | 'fixme'
      | 'serial'
      | 'serial.only'
      | 'serial.skip'
      | 'parallel'
      | 'parallel.only',
    location: Location,
    args: unknown[],
  ): void {
    const api = type === 'default' ? 'test.describe()' : `test.describe.${type}()`
    const parent = this._declarationSuite(api, location)
    let title = ''
    let details: TestDetails | undefined
    let callback: unknown
    if (typeof args[0] === 'function') callback = args[0]
    else if (typeof args[0] === 'string') {
      title = args[0]
      if (typeof args[1] === 'function') callback = args[1]
      else {
        details = args[1] as TestDetails
        callback = args[2]
      }
    } else throw new Error(`${api} expects a title and a callback (at ${formatLocation(location)})`)
    if (typeof callback !== 'function')
      throw new Error(`${api} "${title}" expects a callback function (at ${formatLocation(location)})`)
    const child = new Suite(title, 'describe')
    child.location = location
    child.tags.push(...titleTags(title), ...detailsTags(details, location))
    child.annotations.push(...detailsAnnotations(details, location))
    if (type.endsWith('only')) child.only = true
    if (type.startsWith('serial')) child.mode = 'serial'
    if (type.startsWith('parallel')) child.mode = 'parallel'
    if (type.endsWith('skip')) child.annotations.push({ type: 'skip' })
    if (type === 'fixme') child.annotations.push({ type: 'fixme' })
    if (child.mode === 'parallel' && insideSerial(parent))
      throw new Error(
        `test.describe.parallel() cannot be nested inside a serial describe (at ${formatLocation(location)})`,
      )
    parent._addSuite(child)
    setCurrentDescribeSuite(child)
    let result: unknown
    try {
      result = callback()
    } finally {
      setCurrentDescribeSuite(parent)
    }
    if (result && typeof (result as Promise<unknown>).then === 'function')
      throw new Error(
        `${api} "${title}" callback must not be async: declare tests synchronously (at ${formatLocation(location)})`,
      )
  }

  private _configure(location: Location, options: unknown): void {
    const suite = this._declarationSuite('test.describe.configure()', location)
    if (!options || typeof options !== 'object')
      throw new Error(`test.describe.configure() expects { mode, retries, timeout } (at ${formatLocation(location)})`)
    const { mode, retries, timeout, ...rest } = options as Record<string, unknown>
    const unknownKeys = Object.keys(rest)
    if (unknownKeys.length)
      throw new Error(
        `test.describe.configure(): unknown option "${unknownKeys[0]}"; expected mode, retries or timeout (at ${formatLocation(location)})`,
      )
    if (mode !== undefined) {
      if (mode !== 'default' && mode !== 'serial' && mode !== 'parallel')
        throw new Error(
          `test.describe.configure(): mode must be 'default', 'serial' or 'parallel', got ${JSON.stringify(mode)} (at ${formatLocation(location)})`,
        )
      if (mode === 'parallel' && insideSerial(suite.parent))
        throw new Error(
          `test.describe.configure({ mode: 'parallel' }) cannot be nested inside a serial describe (at ${formatLocation(location)})`,
        )
      suite.mode = mode
    }
    if (retries !== undefined) {
      if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0)
        throw new Error(
          `test.describe.configure(): retries must be a non-negative integer (at ${formatLocation(location)})`,
        )
      suite.retries = retries
    }
    if (timeout !== undefined) {
      if (typeof timeout !== 'number' || timeout < 0)
        throw new Error(
          `test.describe.configure(): timeout must be a non-negative number of ms (at ${formatLocation(location)})`,
        )
      suite.timeout = timeout
    }
  }

  private _hook(type: HookType, location: Location, args: unknown[]): void {
    const suite = this._declarationSuite(`test.${type}()`, location)
    const [first, second] = args
    const title = typeof first === 'string' ? first : `${type} hook`
    const fn = typeof first === 'function' ? first : second
    if (typeof fn !== 'function') throw new Error(`test.${type}() expects a function (at ${formatLocation(location)})`)
    suite.hooks.push({ type, title, fn: fn as (...a: any[]) => unknown, location })
  }

  private _modifier(type: ModifierType, location: Location, args: unknown[]): void {
    // Declaration form: test.skip('title', fn) / test.skip('title', details, fn).
    if (typeof args[0] === 'string' && (typeof args[1] === 'function' || typeof args[2] === 'function')) {
      if (type === 'slow') throw new Error(`test.slow() cannot declare a test (at ${formatLocation(location)})`)
      this._createTest(type, location, args)
      return
    }
    const info = currentTestInfo()
    if (info) {
      if (typeof args[0] === 'function')
        throw new Error(
          `test.${type}() with a condition callback can only be called in a describe block or at file level (at ${formatLocation(location)})`,
        )
      info._modifier(type, args)
      return
    }
    const suite = this._declarationSuite(`test.${type}()`, location)
    if (typeof args[0] === 'function') {
      suite.modifiers.push({
        type,
        fn: args[0] as (f: any) => unknown,
        description: typeof args[1] === 'string' ? args[1] : undefined,
        location,
      })
      return
    }
    if (args.length >= 1 && typeof args[0] !== 'string' && !args[0]) return
    const description = typeof args[0] === 'string' ? args[0] : typeof args[1] === 'string' ? args[1] : undefined
    suite.annotations.push(description === undefined ? { type } : { type, description })
  }

  private _use(location: Location, fixtures: unknown): void {
    const suite = this._declarationSuite('test.use()', location)
    if (!fixtures || typeof fixtures !== 'object' || Array.isArray(fixtures))
      throw new Error(`test.use() expects an object of fixture values (at ${formatLocation(location)})`)
    // `seed` is the runner's own option (properties' seed), not a fixture.
    const { seed, ...rest } = fixtures as Record<string, unknown>
    if ('seed' in fixtures) suite._seed = checkSeed(seed, 'test.use()', location)
    if (Object.keys(rest).length || !('seed' in fixtures)) suite.uses.push({ fixtures: rest, location })
  }

  private async _debug(location: Location): Promise<void> {
    if (!currentTestInfo())
      throw new Error(`test.debug() can only be called while a test is running (at ${formatLocation(location)})`)
    const hook = currentDebugHook()
    if (!hook) {
      process.stderr.write(`vt: test.debug() at ${formatLocation(location)} does nothing without vt test --debug\n`)
      return
    }
    await hook(location)
  }

  private _setTimeout(location: Location, ms: unknown): void {
    if (typeof ms !== 'number' || ms < 0 || Number.isNaN(ms))
      throw new Error(`test.setTimeout() expects a non-negative number of ms (at ${formatLocation(location)})`)
    const info = currentTestInfo()
    if (info) {
      info.setTimeout(ms)
      return
    }
    const suite = this._declarationSuite('test.setTimeout()', location)
    suite.timeout = ms
  }

  private async _step(location: Location, title: unknown, body: unknown, options: unknown): Promise<unknown> {
    const info: RuntimeTestInfo | undefined = currentTestInfo()
    if (typeof title !== 'string')
      throw new Error(`test.step() expects a title string (at ${formatLocation(location)})`)
    if (typeof body !== 'function')
      throw new Error(`test.step("${title}") expects a body function (at ${formatLocation(location)})`)
    if (!info) {
      // Worker fixtures (a cluster) may use steps while no test runs, e.g. in teardown when the worker stops:
      // there is no test to report them on, so the body just runs.
      if (maybeWorkerContext()) return await (body as () => unknown)()
      throw new Error(`test.step() can only be called while a test is running (at ${formatLocation(location)})`)
    }
    const opts = (options ?? {}) as StepOptions
    return info._runStep(title, body as () => unknown, { timeout: opts.timeout, box: opts.box }, location)
  }

  private _extend(location: Location, fixtures: unknown): TestType<any, any> {
    if (currentTestInfo())
      throw new Error(`test.extend() cannot be called inside a test (at ${formatLocation(location)})`)
    if (!fixtures || typeof fixtures !== 'object' || Array.isArray(fixtures))
      throw new Error(`test.extend() expects an object of fixtures (at ${formatLocation(location)})`)
    if ((fixtures as any)[testTypeSymbol])
      throw new Error(`test.extend() expects fixtures, not another test object (at ${formatLocation(location)})`)
    return new TestTypeImpl([...this.fixtures, { fixtures: fixtures as Record<string, unknown>, location }]).test
  }
}

function insideSerial(suite: Suite | undefined): boolean {
  for (let s = suite; s; s = s.parent) if (s.mode === 'serial') return true
  return false
}

function suiteTags(suite: Suite): string[] {
  const tags: string[] = []
  for (let s: Suite | undefined = suite; s; s = s.parent) tags.unshift(...s.tags)
  return tags
}

function titleTags(title: string): string[] {
  return title.match(/@[\S]+/g) ?? []
}

function detailsTags(details: TestDetails | undefined, location: Location): string[] {
  if (!details?.tag) return []
  const tags = Array.isArray(details.tag) ? details.tag : [details.tag]
  for (const tag of tags)
    if (typeof tag !== 'string' || !tag.startsWith('@'))
      throw new Error(`Tag must start with "@" symbol, got ${JSON.stringify(tag)} (at ${formatLocation(location)})`)
  return tags
}

function detailsAnnotations(details: TestDetails | undefined, location: Location): Annotation[] {
  if (!details?.annotation) return []
  const list = Array.isArray(details.annotation) ? details.annotation : [details.annotation]
  for (const a of list)
    if (!a || typeof a.type !== 'string')
      throw new Error(`An annotation needs a string "type" (at ${formatLocation(location)})`)
  return list.map(a => (a.description === undefined ? { type: a.type } : { type: a.type, description: a.description }))
}

/** The TestTypeImpl behind a `test` object (or a TestCase's `_testType`). */
export function testTypeImpl(test: unknown): TestTypeImpl | undefined {
  if (test instanceof TestTypeImpl) return test
  if (typeof test === 'function') return (test as any)[testTypeSymbol]
  return undefined
}

export const rootTestType = new TestTypeImpl([])
/** The base `test`: no fixtures of its own; fixtures/index.ts extends it with vt's built-ins. */
export const rootTest: TestType<{}, {}> = rootTestType.test
