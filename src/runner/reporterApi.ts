// The public reporter interface: what every built-in and custom reporter receives. Only the main process
// calls reporters. A custom reporter is a module whose default export is a class implementing Reporter,
// constructed with the options given in the config (`reporter: [['./my-reporter.ts', { ... }]]`).
import type { FullConfig } from '../config/types.ts'
import type { Suite, TestCase } from './model.ts'

export type { FullConfig, FullProject } from '../config/types.ts'
export type { Suite, TestCase } from './model.ts'

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

export interface Reporter {
  /** True when the reporter prints to stdout; the runner then keeps test output off the terminal. */
  printsToStdio?(): boolean
  onBegin?(config: FullConfig, suite: Suite): void
  onTestBegin?(test: TestCase, result: TestResult): void
  onStepBegin?(test: TestCase, result: TestResult, step: TestStep): void
  onStepEnd?(test: TestCase, result: TestResult, step: TestStep): void
  onStdOut?(chunk: string | Buffer, test: TestCase | undefined, result: TestResult | undefined): void
  onStdErr?(chunk: string | Buffer, test: TestCase | undefined, result: TestResult | undefined): void
  onTestEnd?(test: TestCase, result: TestResult): void
  /** A global error: a file that failed to load, globalSetup failure, a worker-scoped teardown error. */
  onError?(error: TestError): void
  /** May return a status to override the run's result. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a reporter's onEnd usually returns nothing
  onEnd?(result: FullResult): void | Promise<void | { status?: FullResult['status'] }>
  /** Called after onEnd, when the run's output is complete (flush files here). */
  onExit?(): void | Promise<void>
}

export type ReporterDescription = [name: string, options?: Record<string, unknown>]

/** Options every built-in reporter constructor receives besides its own: where to write, and color. */
export interface ReporterContext {
  rootDir: string
  outputDir: string
  configDir: string
}
