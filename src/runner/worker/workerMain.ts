// The worker: receives 'init' (config, project), then 'run' groups of tests of one file, runs them with hooks,
// fixtures and timeouts, and streams events back (ipc.ts). Worker-scoped fixtures live until 'stop'.
// Over 400 lines on purpose: running a group (hooks, fixtures, timeouts, skips, serial failures) is one state
// machine over WorkerMain's state; the fixture engine and property runs already live in fixtureEngine/ and prop/.
import { ipcAgentRestarter } from '../../cluster/agentRestart.ts'
import { loadConfig } from '../../config/load.ts'
import type { FullConfig, FullProject } from '../../config/types.ts'
import { IpcTransport, setSyncTransport } from '../../sync/transport.ts'
import { safeInstanceOf } from '../../util/thrown.ts'
import { serializeError } from '../errors.ts'
import { PoolBuilder } from '../fixtureEngine/pool.ts'
import type { FixtureContext } from '../fixtureEngine/runner.ts'
import { FixtureRunner } from '../fixtureEngine/runner.ts'
import type { InitMessage, MainToWorker, RunMessage, TestEndMessage, WorkerToMain } from '../ipc.ts'
import { assignTestIds, loadTestFile } from '../loadFile.ts'
import type { Hook, Suite, TestCase } from '../model.ts'
import { runProperty } from '../prop/run.ts'
import type { TestError } from '../reporterApi.ts'
import type { WorkerInfo } from '../testType.ts'
import { setWorkerContext } from '../workerContext.ts'
import { DebugPauser } from './debugPause.ts'
import { runWithTestInfo, setCurrentTestInfo, setDebugHook } from './globals.ts'
import { SkipError, serializeErrorWithBox, TestInfoImpl } from './testInfo.ts'
import { InterruptedError, Slot, TimeoutError, TimeoutManager } from './timeoutManager.ts'

export type Send = (message: WorkerToMain) => void

/** Calls a user function without a receiver, so stack frames read "at file:line" instead of "TestCase.fn". */
function callUnbound(fn: (...args: any[]) => unknown, ...args: unknown[]): unknown {
  return fn(...args)
}

/** Suites from the file suite down to the test's parent. */
function chainOf(test: TestCase): Suite[] {
  const chain: Suite[] = []
  for (let s: Suite | undefined = test.parent; s && s.type !== 'project' && s.type !== 'root'; s = s.parent)
    chain.unshift(s)
  return chain
}

function contains(suite: Suite, test: TestCase): boolean {
  for (let s: Suite | undefined = test.parent; s; s = s.parent) if (s === suite) return true
  return false
}

function effectiveTimeout(test: TestCase, project: FullProject): number {
  if (test.timeout) return test.timeout
  for (let s: Suite | undefined = test.parent; s; s = s.parent) if (s.timeout !== undefined) return s.timeout
  return project.timeout
}

/** A test's id and its titles from the file down (" › " between them), for a debug pause. */
function debugTitle(test: TestCase): { id: string; title: string } {
  return {
    id: test.id,
    title: [
      ...chainOf(test)
        .filter(s => s.type === 'describe')
        .map(s => s.title),
      test.title,
    ].join(' › '),
  }
}

/** The outermost serial describe around a test. */
function serialRoot(test: TestCase): Suite | undefined {
  let root: Suite | undefined
  for (let s: Suite | undefined = test.parent; s; s = s.parent) if (s.mode === 'serial') root = s
  return root
}

export class WorkerMain {
  private config!: FullConfig
  private project!: FullProject
  private init!: InitMessage
  private workerInfo!: WorkerInfo
  private readonly files = new Map<string, { suite: Suite; pools: PoolBuilder; poolErrors: TestError[] }>()
  private readonly fixtures = new FixtureRunner()
  private readonly timeouts = new TimeoutManager()
  /** Suites whose beforeAll hooks ran and whose afterAll hooks are still due. */
  private readonly activeSuites: Suite[] = []
  /** Suites where a test failed (serial) or beforeAll failed: their remaining tests in the group are skipped. */
  private readonly skipSuites = new Set<Suite>()
  private runningGroup?: Promise<void>
  private stopping?: Promise<void>
  private stopRequested = false
  private currentTest?: TestInfoImpl
  /** `vt test --debug` / `--keep-on-failure`. */
  private debug?: DebugPauser

  constructor(private readonly send: Send) {}

  /** The main process answered a debug pause: the paused test goes on. */
  resumeDebug(): void {
    this.debug?.resume()
  }

  /** The id of the running test, for attributing output. */
  get currentTestId(): string | undefined {
    return this.currentTest?._test.id
  }

  /** An error nobody awaited (unhandled rejection, uncaught exception): it fails the running test. */
  unhandledError(error: unknown): void {
    if (this.currentTest) {
      this.currentTest._failWithError(error)
      return
    }
    const e = serializeError(error)
    this.send({ type: 'stderr', text: `vt worker: unhandled error outside of a test: ${e.stack ?? e.message}\n` })
  }

  async handle(message: MainToWorker): Promise<void> {
    if (message.type === 'init') await this.onInit(message)
    else if (message.type === 'run') {
      const group = this.onRun(message)
      this.runningGroup = group
      try {
        await group
      } finally {
        if (this.runningGroup === group) this.runningGroup = undefined
      }
    } else if (message.type === 'stop') await this.stop()
  }

  async onInit(message: InitMessage): Promise<void> {
    this.init = message
    // The main process validated this file before it started any worker.
    this.config = await loadConfig(message.config.configFile, message.config.overrides, { validate: false })
    const project = this.config.projects.find(p => p.id === message.projectId)
    if (!project)
      throw new Error(
        `vt worker: project "${message.projectId}" not found in ${message.config.configFile || 'the default config'} (projects: ${this.config.projects.map(p => p.id).join(', ')})`,
      )
    this.project = project
    this.workerInfo = {
      config: this.config,
      project,
      workerIndex: message.workerIndex,
      parallelIndex: message.parallelIndex,
    }
    if (this.config.debug) {
      const debug = new DebugPauser(this.config.debug, this.send, this.timeouts)
      this.debug = debug
      if (debug.mode === 'all') {
        // Like Playwright's --debug: no test, fixture or hook times out while someone looks at the cluster.
        this.timeouts.ignoreTimeouts = true
        setDebugHook(location => {
          const test = this.currentTest
          if (!test) throw new Error('test.debug() can only be called while a test is running')
          return debug.pause(debugTitle(test._test), 'test.debug()', location)
        })
      }
    }
    setWorkerContext({
      workerIndex: message.workerIndex,
      parallelIndex: message.parallelIndex,
      config: this.config,
      project,
      cluster: message.cluster,
    })
    this.send({ type: 'ready' })
  }

  private async loadFile(file: string) {
    let entry = this.files.get(file)
    if (!entry) {
      const suite = await loadTestFile(file, this.config.rootDir)
      assignTestIds(suite, this.project.id, this.init.repeatEachIndex)
      const pools = new PoolBuilder(this.project, this.config)
      if (!suite._loadError) for (const test of suite.allTests()) pools.visit(test)
      entry = { suite, pools, poolErrors: [...pools.errors] }
      this.files.set(file, entry)
    }
    return entry
  }

  async onRun(message: RunMessage): Promise<void> {
    const fatalErrors: TestError[] = []
    const remaining: string[] = []
    let unusable = false
    const { suite, pools, poolErrors } = await this.loadFile(message.file)
    if (suite._loadError || poolErrors.length) {
      fatalErrors.push(...(suite._loadError ? [suite._loadError] : poolErrors))
      this.send({ type: 'done', fatalErrors, remaining, unusable: true })
      return
    }
    const byId = new Map(suite.allTests().map(t => [t.id, t]))
    const entries: { test: TestCase; retry: number }[] = []
    for (const entry of message.entries) {
      const test = byId.get(entry.testId)
      if (test) entries.push({ test, retry: entry.retry })
      else
        fatalErrors.push({
          message: `vt worker: test id ${entry.testId} not found in ${message.file} (the file changed since it was planned?)`,
          location: { file: message.file, line: 1, column: 1 },
        })
    }
    this.skipSuites.clear()
    for (let i = 0; i < entries.length; i++) {
      const { test, retry } = entries[i]
      if (this.stopRequested) {
        remaining.push(...entries.slice(i).map(e => e.test.id))
        break
      }
      const later = entries.slice(i + 1).map(e => e.test)
      const result = await this.runTest(test, retry, later, pools)
      const failed = result.status !== 'skipped' && result.status !== result.expectedStatus
      if (result.status === 'interrupted') {
        remaining.push(...later.map(t => t.id))
        break
      }
      if (this.fixtures.hasFailedWorkerFixture()) unusable = true
      if ((failed && !this.config.reuseWorkerAfterFailure) || unusable) {
        // Tests skipped because of this failure (serial suite, failed beforeAll) are reported here; the rest
        // go back to the dispatcher for a fresh worker.
        let j = i + 1
        for (; j < entries.length; j++) {
          const next = entries[j]
          if (![...this.skipSuites].some(s => contains(s, next.test))) break
          await this.runTest(next.test, next.retry, [], pools)
        }
        remaining.push(...entries.slice(j).map(e => e.test.id))
        unusable = true
        break
      }
    }
    this.send({ type: 'done', fatalErrors, remaining, unusable })
  }

  private fixtureContext(info: TestInfoImpl | undefined): FixtureContext {
    return {
      testInfo: info,
      workerInfo: this.workerInfo,
      timeouts: this.timeouts,
      step: (title, category, location, box, body) =>
        info ? info._runStep(title, body, { category, hidden: box }, location) : body(),
      setActivity: activity => {
        if (info) info._activity = activity
      },
      fallbackTimeout: info?.timeout || this.project.timeout,
    }
  }

  private async runHook(hook: Hook, info: TestInfoImpl, pools: PoolBuilder, test: TestCase): Promise<void> {
    const ctx = this.fixtureContext(info)
    const workerOnly = hook.type === 'beforeAll' || hook.type === 'afterAll'
    await info._runStep(
      hook.title,
      async () => {
        info._activity = `running ${hook.type} hook "${hook.title}"`
        const params = await this.fixtures.resolveParams(hook.fn, pools.poolFor(test), ctx, !workerOnly)
        info._activity = `running ${hook.type} hook "${hook.title}"`
        await callUnbound(hook.fn, params, info)
      },
      { category: 'hook' },
      hook.location,
    )
  }

  /** Records an error from any phase on the test: status by kind, message and location. */
  private record(info: TestInfoImpl, error: unknown): void {
    if (safeInstanceOf(error, SkipError)) {
      if (info.status === 'passed') info.status = 'skipped'
      return
    }
    if (safeInstanceOf(error, InterruptedError)) {
      if (info.status === 'passed' || info.status === 'skipped') info.status = 'interrupted'
      return
    }
    if (safeInstanceOf(error, TimeoutError)) {
      if (info.status === 'passed' || info.status === 'skipped') info.status = 'timedOut'
      info.errors.push({ message: (error as TimeoutError).message, location: info._test.location })
      return
    }
    const serialized = serializeErrorWithBox(error, info._test.location)
    info.errors.push(serialized)
    if (info.status === 'passed' || info.status === 'skipped') info.status = 'failed'
  }

  private async runTest(
    test: TestCase,
    retry: number,
    later: TestCase[],
    pools: PoolBuilder,
  ): Promise<{ status: TestEndMessage['status']; expectedStatus: TestEndMessage['expectedStatus'] }> {
    const info = new TestInfoImpl({
      test,
      retry,
      config: this.config,
      project: this.project,
      workerIndex: this.init.workerIndex,
      parallelIndex: this.init.parallelIndex,
      timeout: effectiveTimeout(test, this.project),
      send: this.send,
      timeouts: this.timeouts,
    })
    this.currentTest = info
    setCurrentTestInfo(info)
    this.send({ type: 'testBegin', testId: test.id, startWallTime: Date.now() })
    const chain = chainOf(test)
    const pool = pools.poolFor(test)
    const ctx = this.fixtureContext(info)

    // Static skips: declaration, describe.skip / test.skip() at describe level, a failed serial sibling.
    for (const suite of chain) for (const a of suite.annotations) info.annotations.push({ ...a })
    const staticSkip =
      test.expectedStatus === 'skipped' ||
      chain.some(s => s.annotations.some(a => a.type === 'skip' || a.type === 'fixme')) ||
      [...this.skipSuites].some(s => contains(s, test))
    if (staticSkip) {
      info.status = 'skipped'
      info.expectedStatus = 'skipped'
    } else {
      if (chain.some(s => s.annotations.some(a => a.type === 'fail'))) info.expectedStatus = 'failed'
      const slow = chain.some(s => s.annotations.some(a => a.type === 'slow'))
      if (slow) info._slot.timeout *= 3
      await runWithTestInfo(info, () => this.runTestPhases(test, info, chain, pool, pools, ctx))
    }
    await runWithTestInfo(info, () => this.closeSuites(test, info, later, pools))
    if (info.status === 'passed' && info.expectedStatus === 'failed')
      info.errors.push({ message: 'Expected to fail, but passed.', location: test.location })

    info._end()
    setCurrentTestInfo(undefined)
    this.currentTest = undefined
    if (info.status !== 'skipped' && info.status !== info.expectedStatus && info.status !== 'interrupted') {
      const root = serialRoot(test)
      if (root) this.skipSuites.add(root)
    }
    this.send({
      type: 'testEnd',
      testId: test.id,
      duration: info.duration,
      status: info.status,
      errors: info.errors,
      expectedStatus:
        info.expectedStatus === 'timedOut' || info.expectedStatus === 'interrupted' ? 'passed' : info.expectedStatus,
      annotations: info.annotations,
      timeout: info.timeout,
    })
    return {
      status: info.status,
      expectedStatus: info.expectedStatus as TestEndMessage['expectedStatus'],
    }
  }

  private async runTestPhases(
    test: TestCase,
    info: TestInfoImpl,
    chain: Suite[],
    pool: ReturnType<PoolBuilder['poolFor']>,
    pools: PoolBuilder,
    ctx: FixtureContext,
  ): Promise<void> {
    let reachedEach = false
    const describeTimeout = () =>
      `Test timeout of ${info._slot.timeout}ms exceeded${info._activity ? ` while ${info._activity}` : ''}.`
    try {
      await this.timeouts.run(info._slot, describeTimeout, async () => {
        // beforeAll hooks of suites entered with this test: each in its own slot.
        for (const suite of chain) {
          if (this.activeSuites.includes(suite)) continue
          this.activeSuites.push(suite)
          for (const hook of suite.hooks.filter(h => h.type === 'beforeAll')) {
            try {
              await this.timeouts.run(
                new Slot(info.timeout),
                () => `beforeAll hook "${hook.title}" timeout of ${info.timeout}ms exceeded.`,
                () => this.runHook(hook, info, pools, test),
              )
            } catch (error) {
              this.skipSuites.add(suite)
              throw error
            }
          }
        }
        // Conditional modifiers: test.skip(({ fixture }) => cond, 'why') at describe level.
        for (const suite of chain)
          for (const modifier of suite.modifiers) {
            if (!modifier.fn) continue
            const params = await this.fixtures.resolveParams(modifier.fn, pool, ctx)
            if (await callUnbound(modifier.fn, params)) info._modifier(modifier.type, [true, modifier.description])
          }
        await this.fixtures.setupAuto(pool, 'worker', ctx)
        await this.fixtures.setupAuto(pool, 'test', ctx)
        reachedEach = true
        for (const suite of chain)
          for (const hook of suite.hooks.filter(h => h.type === 'beforeEach'))
            await this.runHook(hook, info, pools, test)
        if (test._prop) {
          await runProperty({
            test,
            info,
            prop: test._prop,
            timeouts: this.timeouts,
            setup: () => this.fixtures.resolveParams(test.fn, pool, ctx),
            mark: () => this.fixtures.mark(),
            teardown: (mark, slot) => this.fixtures.teardownScope('test', ctx, slot, mark),
          })
          return
        }
        info._activity = 'setting up fixtures of the test'
        const params = await this.fixtures.resolveParams(test.fn, pool, ctx)
        info._activity = undefined
        await callUnbound(test.fn, params, info)
      })
    } catch (error) {
      this.record(info, error)
    }
    info._activity = undefined
    // --debug / --keep-on-failure: a failed test pauses here, before anything of it is torn down.
    if (
      this.debug &&
      info.status !== 'skipped' &&
      info.status !== 'interrupted' &&
      info.status !== info.expectedStatus
    ) {
      try {
        await this.debug.pause(debugTitle(test), 'failure', test.location, info.errors[0]?.message)
      } catch (error) {
        this.record(info, error)
      }
    }

    // Teardown: afterEach hooks and test fixtures in a fresh slot of the same size, even after a timeout.
    const teardownSlot = new Slot(info.timeout)
    info._currentSlot = teardownSlot
    const describeTeardown = () =>
      `Teardown timeout of ${teardownSlot.timeout}ms exceeded${info._activity ? ` while ${info._activity}` : ''}.`
    if (reachedEach) {
      for (const suite of [...chain].reverse())
        for (const hook of suite.hooks.filter(h => h.type === 'afterEach')) {
          try {
            await this.timeouts.runUninterruptible(teardownSlot, describeTeardown, () =>
              this.runHook(hook, info, pools, test),
            )
          } catch (error) {
            this.record(info, error)
          }
        }
    }
    for (const error of await this.fixtures.teardownScope('test', ctx, teardownSlot)) this.record(info, error)
  }

  /** afterAll hooks of suites that have no more tests in this group (an interrupted run leaves them to stop()). */
  private async closeSuites(test: TestCase, info: TestInfoImpl, later: TestCase[], pools: PoolBuilder): Promise<void> {
    if (info.status === 'interrupted' || this.stopRequested) return
    for (const suite of [...this.activeSuites].reverse()) {
      if (later.some(t => contains(suite, t))) continue
      if (!contains(suite, test)) continue
      for (const error of await this.runAfterAll(suite, info, pools, test)) this.record(info, error)
    }
  }

  private async runAfterAll(suite: Suite, info: TestInfoImpl, pools: PoolBuilder, test: TestCase): Promise<unknown[]> {
    const index = this.activeSuites.indexOf(suite)
    if (index !== -1) this.activeSuites.splice(index, 1)
    const errors: unknown[] = []
    for (const hook of suite.hooks.filter(h => h.type === 'afterAll')) {
      try {
        await this.timeouts.runUninterruptible(
          new Slot(info.timeout),
          () => `afterAll hook "${hook.title}" timeout of ${info.timeout}ms exceeded.`,
          () => this.runHook(hook, info, pools, test),
        )
      } catch (error) {
        errors.push(error)
      }
    }
    return errors
  }

  /** Interrupts a running test, runs pending afterAll hooks, tears down worker fixtures and reports errors. */
  stop(): Promise<void> {
    this.stopping ??= this._stop()
    return this.stopping
  }

  private async _stop(): Promise<void> {
    this.stopRequested = true
    if (this.runningGroup) {
      this.timeouts.interrupt()
      await this.runningGroup.catch(() => {})
    }
    const errors: TestError[] = []
    if (this.config) {
      // afterAll hooks still due (the group stopped early): they run without a test, worker fixtures only.
      for (const suite of [...this.activeSuites].reverse()) {
        const hooks = suite.hooks.filter(h => h.type === 'afterAll')
        const index = this.activeSuites.indexOf(suite)
        this.activeSuites.splice(index, 1)
        const firstTest = suite.allTests()[0]
        const entry = firstTest && this.files.get(suite.fileSuite()?._file ?? '')
        for (const hook of hooks) {
          try {
            await this.timeouts.runUninterruptible(
              new Slot(this.project.timeout),
              () => `afterAll hook "${hook.title}" timeout of ${this.project.timeout}ms exceeded.`,
              async () => {
                const params = entry
                  ? await this.fixtures.resolveParams(
                      hook.fn,
                      entry.pools.poolFor(firstTest),
                      this.fixtureContext(undefined),
                      false,
                    )
                  : {}
                await callUnbound(hook.fn, params, this.workerInfo)
              },
            )
          } catch (error) {
            errors.push(serializeError(error, hook.location))
          }
        }
      }
      const ctx = this.fixtureContext(undefined)
      for (const error of await this.fixtures.teardownScope('worker', ctx, new Slot(this.project.timeout)))
        errors.push(serializeError(error))
      // A fixture abandoned mid-setup (a VM still booting when its test timed out) may yet finish and clean up.
      await this.fixtures.waitForAbandoned(Math.min(this.project.timeout || 10_000, 10_000))
    }
    this.send({ type: 'teardownErrors', errors })
  }
}

/** Wires a WorkerMain to this process: IPC messages in and out, stdout/stderr captured, SIGINT ignored. */
export function runWorkerProcess(): void {
  if (!process.send) throw new Error('vt worker: must be started by the vt runner with an IPC channel')
  // The main process coordinates Ctrl-C: it sends 'stop', and the worker tears everything down.
  process.on('SIGINT', () => {})
  const send: Send = message => {
    if (!process.connected) return
    lastSent = new Promise(resolve => process.send!(message, undefined, {}, () => resolve()))
  }
  const worker = new WorkerMain(send)
  const sync = new IpcTransport(send)
  setSyncTransport(sync)
  const restarts = ipcAgentRestarter(send)
  captureOutput(worker, send)
  process.on('unhandledRejection', reason => worker.unhandledError(reason))
  process.on('uncaughtException', error => worker.unhandledError(error))
  let queue = Promise.resolve()
  process.on('message', (message: MainToWorker) => {
    // Sync answers go straight to whoever waits for them, never behind a running group.
    if (message.type === 'syncReply' || message.type === 'syncArrival') return sync.handle(message)
    if (message.type === 'debugResume') return worker.resumeDebug()
    if (message.type === 'clusterReply') return restarts.handle(message)
    queue = queue.then(() =>
      worker.handle(message).then(() => {
        if (message.type === 'stop') exitAfterFlush(0)
      }),
    )
    queue = queue.catch(error => {
      originalStderrWrite(`vt worker: ${error?.stack ?? error}\n`)
      exitAfterFlush(1)
    })
    // 'stop' must reach a running group without waiting for it in the queue.
    if (message.type === 'stop') void worker.stop()
  })
  // The main process went away: clean up worker fixtures and leave.
  process.on('disconnect', () => {
    sync.closeAll('the main process of vt test went away')
    void worker.stop().finally(() => process.exit(0))
  })
}

let originalStderrWrite: (text: string) => void = text => process.stderr.write(text)

/** Settles when the last message sent has been handed to the channel (messages go out in order). */
let lastSent: Promise<void> = Promise.resolve()

function exitAfterFlush(code: number): void {
  if (!process.connected) process.exit(code)
  void lastSent.then(() => process.exit(code))
}

/** Sends everything written to stdout/stderr as output messages attributed to the running test. */
function captureOutput(worker: WorkerMain, send: Send): void {
  const stderrWrite = process.stderr.write.bind(process.stderr)
  originalStderrWrite = text => {
    stderrWrite(text)
  }
  for (const stream of ['stdout', 'stderr'] as const) {
    const target = process[stream]
    target.write = ((chunk: string | Uint8Array, encoding?: unknown, callback?: unknown) => {
      const cb = typeof encoding === 'function' ? encoding : callback
      let text: string
      let binary = false
      if (typeof chunk === 'string') text = chunk
      else {
        const buffer = Buffer.from(chunk)
        const decoded = buffer.toString('utf8')
        if (Buffer.from(decoded, 'utf8').equals(buffer)) text = decoded
        else {
          text = buffer.toString('base64')
          binary = true
        }
      }
      const testId = worker.currentTestId
      send({ type: stream, text, ...(testId ? { testId } : {}), ...(binary ? { binary } : {}) })
      if (typeof cb === 'function') process.nextTick(cb as () => void)
      return true
    }) as typeof target.write
  }
}
