// Process-wide "what is happening right now" state shared by the spec API (testType.ts), the loader and the
// worker. Kept in one tiny module so that the main process can import the spec API without the worker.

import { AsyncLocalStorage } from 'node:async_hooks'
import type { Suite } from '../model.ts'
import type { Location, Progress } from '../reporterApi.ts'

/** What the spec API needs from the running test's TestInfo (implemented by worker/testInfo.ts). */
export interface RuntimeTestInfo {
  readonly title: string
  _modifier(type: 'skip' | 'fixme' | 'fail' | 'slow', args: unknown[]): void
  _runStep<T>(
    title: string,
    body: () => T | Promise<T>,
    options: { timeout?: number; box?: boolean; category?: string },
    location: Location,
  ): Promise<T>
  /**
   * Runs `body` as a reported step without making it async: a sync body ends the step before returning, a
   * promise ends it when it settles. Used for expect matchers.
   */
  _stepSync<T>(title: string, category: string, location: Location | undefined, body: () => T): T
  attach(name: string, options: { body?: string | Buffer; path?: string; contentType?: string }): Promise<void>
  setTimeout(ms: number): void
  /** Reports progress of a step (default: the innermost running one, else the test); throttled. */
  _progress(progress: Progress, stepId?: string): void
  _currentStepId(): string | undefined
  /** Soft expect failures land here. */
  _failWithError(error: unknown): void
  /** The expect timeout of the running config. */
  _expectTimeout(): number
  /** Set once the test reported its end: code still running for it (after a timeout) is ignored. */
  _ended?: boolean
}

let loadingFileSuite: Suite | undefined
let currentDescribe: Suite | undefined
let testInfo: RuntimeTestInfo | undefined

export function setCurrentlyLoadingFileSuite(suite: Suite | undefined): void {
  loadingFileSuite = suite
  currentDescribe = suite
}

export function currentlyLoadingFileSuite(): Suite | undefined {
  return loadingFileSuite
}

/** The innermost `test.describe` being declared (or the file suite). */
export function currentDescribeSuite(): Suite | undefined {
  return currentDescribe
}

export function setCurrentDescribeSuite(suite: Suite | undefined): void {
  currentDescribe = suite
}

export function setCurrentTestInfo(info: RuntimeTestInfo | undefined): void {
  testInfo = info
}

/** The test whose code is running, by async context: code left running by a timed-out test keeps its own. */
const testInfoStorage = new AsyncLocalStorage<RuntimeTestInfo>()

export function runWithTestInfo<T>(info: RuntimeTestInfo, body: () => T): T {
  return testInfoStorage.run(info, body)
}

export function currentTestInfo(): RuntimeTestInfo | undefined {
  const own = testInfoStorage.getStore()
  // A test's leftover code (its body after a timeout, a worker fixture it set up, tearing down at stop) must
  // not report into whichever test runs now.
  if (own) return own._ended ? undefined : own
  return testInfo
}

/** `test.debug()`'s way into the worker: set under `vt test --debug` only (else test.debug() is a no-op). */
let debugHook: ((location: Location) => Promise<void>) | undefined

export function setDebugHook(hook: ((location: Location) => Promise<void>) | undefined): void {
  debugHook = hook
}

export function currentDebugHook(): ((location: Location) => Promise<void>) | undefined {
  return debugHook
}
