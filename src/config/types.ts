// Types of `vt.config.ts` as the user writes it (Config) and as the runner resolves it (FullConfig).
// The zod schema in ./schema.ts validates the same shape at load time; keep the two in step.
import type { ClusterConfig } from './cluster.ts'
import type { TraceMode } from './trace.ts'

export type { ClusterConfig } from './cluster.ts'

export type ReporterDescription = [name: string, options?: Record<string, unknown>]

/** Fixture options given through `use` (config, project or `test.use`). Open: user fixtures add their own. */
export interface UseOptions {
  /** When the console log and QMP transcript of the test's VMs are attached (default 'retain-on-failure'). */
  trace?: TraceMode
  [option: string]: unknown
}

export interface ProjectConfig {
  name?: string
  use?: UseOptions
  testDir?: string
  testMatch?: string | RegExp | (string | RegExp)[]
  testIgnore?: string | RegExp | (string | RegExp)[]
  outputDir?: string
  retries?: number
  repeatEach?: number
  timeout?: number
  fullyParallel?: boolean
  /** Names of projects that must pass before this one runs. */
  dependencies?: string[]
  grep?: RegExp | RegExp[]
  grepInvert?: RegExp | RegExp[]
  /** The hosts this project's tests run on: embedded local agents or remote `vt agent`s. */
  cluster?: ClusterConfig
  metadata?: Record<string, unknown>
  /** Seed of every property (`test.prop`) of the project; `vt test --seed` and test.use({ seed }) beat it. */
  seed?: number
}

export interface Config extends Omit<ProjectConfig, 'name' | 'dependencies'> {
  projects?: ProjectConfig[]
  reporter?: string | ReporterDescription[]
  workers?: number | string
  globalTimeout?: number
  maxFailures?: number
  forbidOnly?: boolean
  failOnFlakyTests?: boolean
  /** Keep a worker (and its worker-scoped fixtures, such as a connected cluster) after a test fails. */
  reuseWorkerAfterFailure?: boolean
  globalSetup?: string
  globalTeardown?: string
  expect?: { timeout?: number }
  quiet?: boolean
  shard?: { current: number; total: number } | null
  passWithNoTests?: boolean
  preserveOutput?: 'always' | 'never' | 'failures-only'
  /**
   * Values that reports must never show (besides cluster tokens, which are always redacted): a literal, the
   * value of an environment variable, or the content of a file. Redacted from test output, errors, steps,
   * attachments and the config echo of every reporter.
   */
  redact?: RedactSource[]
}

export type RedactSource = string | { env: string } | { file: string }

export interface FullProject {
  /** Stable id, unique in the run (the name, or 'project-N' when unnamed). */
  id: string
  name: string
  use: UseOptions
  testDir: string
  testMatch: string | RegExp | (string | RegExp)[]
  testIgnore: string | RegExp | (string | RegExp)[]
  outputDir: string
  retries: number
  repeatEach: number
  timeout: number
  fullyParallel: boolean
  dependencies: string[]
  grep: RegExp | RegExp[]
  grepInvert: RegExp | RegExp[] | null
  cluster?: ClusterConfig
  metadata: Record<string, unknown>
  seed?: number
}

export interface FullConfig {
  /** Absolute path of the config file, or '' when running without one. */
  configFile: string
  rootDir: string
  projects: FullProject[]
  reporter: ReporterDescription[]
  workers: number
  globalTimeout: number
  maxFailures: number
  forbidOnly: boolean
  failOnFlakyTests: boolean
  reuseWorkerAfterFailure: boolean
  globalSetup: string | null
  globalTeardown: string | null
  expectTimeout: number
  fullyParallel: boolean
  quiet: boolean
  shard: { current: number; total: number } | null
  passWithNoTests: boolean
  preserveOutput: 'always' | 'never' | 'failures-only'
  redact: RedactSource[]
  version: string
  metadata: Record<string, unknown>
  /** `vt test --seed N [--path P]`: fixes the seed (and path) of every property. */
  replaySeed: number | null
  replayPath: string | null
  /** `vt test --debug` / `--keep-on-failure`: when a test pauses with its cluster alive (unset: never). */
  debug?: 'all' | 'failures'
}

export function defineConfig(config: Config): Config {
  return config
}

/** Settings from the command line that override the config file's. */
export interface ConfigOverrides {
  timeout?: number
  retries?: number
  repeatEach?: number
  workers?: number
  outputDir?: string
  maxFailures?: number
  globalTimeout?: number
  forbidOnly?: boolean
  failOnFlakyTests?: boolean
  passWithNoTests?: boolean
  reporter?: [string, Record<string, unknown>?][]
  shard?: { current: number; total: number }
  /** `vt test --seed`: every property's seed; `--path` with it replays one run. */
  seed?: number
  seedPath?: string
  /** `vt test --trace`: `use.trace` of every project. */
  trace?: TraceMode
  /** `vt test --debug` ('all': pause at test.debug() and after failures) or `--keep-on-failure` ('failures'). */
  debug?: 'all' | 'failures'
}
