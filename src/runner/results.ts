// What a test run produces: results, steps, errors, attachments. Plain data shared by the model, the worker,
// the reporters and the blob format (re-exported by reporterApi.ts, the public face).

export interface Location {
  file: string
  line: number
  column: number
}

export type TestStatus = 'passed' | 'failed' | 'timedOut' | 'skipped' | 'interrupted'

export interface TestError {
  message: string
  stack?: string
  /** A code frame pointing at the failing line of the spec, already rendered (no colors). */
  snippet?: string
  location?: Location
  /** Extra structured data, e.g. { host, service, call } for cluster errors. */
  details?: Record<string, unknown>
}

export interface Attachment {
  name: string
  contentType: string
  path?: string
  body?: Buffer
}

/**
 * How far long work has come (an image build, a boot, a migration, a copy): reported from a step with
 * `apiStep(title, async step => step.progress({ ... }))` or `reportProgress({ ... })`, shown by the list reporter.
 * Give bytes (with a total when known), or a percentage, and/or a message saying what happens now.
 */
export interface Progress {
  /** What is happening now, e.g. 'building the tiny image' or 'waiting for the guest to boot'. */
  message?: string
  /** 0 to 100; derived from bytes/totalBytes when not given. */
  percent?: number
  /** Bytes done so far. */
  bytes?: number
  /** Bytes in all, when known. */
  totalBytes?: number
}

export interface TestStep {
  title: string
  titlePath(): string[]
  /** 'hook' | 'fixture' | 'test.step' | 'expect' | 'attach' */
  category: string
  location?: Location
  parent?: TestStep
  startTime: Date
  duration: number
  error?: TestError
  steps: TestStep[]
}

export interface TestResult {
  retry: number
  workerIndex: number
  parallelIndex: number
  startTime: Date
  duration: number
  status: TestStatus
  error?: TestError
  errors: TestError[]
  attachments: Attachment[]
  annotations: { type: string; description?: string }[]
  stdout: (string | Buffer)[]
  stderr: (string | Buffer)[]
  steps: TestStep[]
}

export interface FullResult {
  status: 'passed' | 'failed' | 'timedout' | 'interrupted'
  startTime: Date
  duration: number
}

/** A result with nothing in it yet: the one place a TestResult is made (dispatcher, planner, blob replay). */
export function newTestResult(
  init: Pick<TestResult, 'retry' | 'workerIndex' | 'parallelIndex' | 'startTime'> & Partial<TestResult>,
): TestResult {
  return {
    duration: -1,
    status: 'skipped',
    errors: [],
    attachments: [],
    annotations: [],
    stdout: [],
    stderr: [],
    steps: [],
    ...init,
  }
}
