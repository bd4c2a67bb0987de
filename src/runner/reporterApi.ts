// The public reporter interface: what every built-in and custom reporter receives. Only the main process
// calls reporters. A custom reporter is a module whose default export is a class implementing Reporter,
// constructed with the options given in the config (`reporter: [['./my-reporter.ts', { ... }]]`).
import type { FullConfig } from '../config/types.ts'
import type { Suite, TestCase } from './model.ts'
import type { FullResult, Progress, TestError, TestResult, TestStep } from './results.ts'

export type { FullConfig, FullProject } from '../config/types.ts'
export type { Suite, TestCase } from './model.ts'
export type {
  Attachment,
  FullResult,
  Location,
  Progress,
  TestError,
  TestResult,
  TestStatus,
  TestStep,
} from './results.ts'

export interface Reporter {
  /** True when the reporter prints to stdout; the runner then keeps test output off the terminal. */
  printsToStdio?(): boolean
  onBegin?(config: FullConfig, suite: Suite): void
  onTestBegin?(test: TestCase, result: TestResult): void
  onStepBegin?(test: TestCase, result: TestResult, step: TestStep): void
  onStepEnd?(test: TestCase, result: TestResult, step: TestStep): void
  /**
   * Long work reports how far it has come (image build, boot, migration, copies): `step` is the innermost step
   * that reported it (undefined: the test itself). Throttled by the worker to a few calls a second per step.
   */
  onProgress?(test: TestCase, result: TestResult, step: TestStep | undefined, progress: Progress): void
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
