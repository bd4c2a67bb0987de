// `vt test [filters...]`: run (or list) the specs. Flags follow Playwright Test's names.
import { type Command, InvalidArgumentError, Option } from 'commander'
import { isTraceMode, type TraceMode, traceModes } from '../../config/trace.ts'
import type { ConfigOverrides } from '../../runner/ipc.ts'
import type { RunOptions } from '../../runner/main/options.ts'
import { replayPathExample, replayPathPattern } from '../../runner/prop/path.ts'
import type { CliCommand } from './types.ts'

function traceArg(value: string): TraceMode {
  if (!isTraceMode(value.trim())) throw new InvalidArgumentError(`expected one of ${traceModes.join(', ')}`)
  return value.trim() as TraceMode
}

function intArg(min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected an integer >= ${min}`)
    const n = Number(value)
    if (n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`)
    return n
  }
}

function workersArg(value: string): string {
  if (!/^\d+%?$/.test(value.trim()) || /^0+%?$/.test(value.trim()))
    throw new InvalidArgumentError('expected a positive number of workers or a percentage of the cores such as 50%')
  return value.trim()
}

export function parseShard(value: string): { current: number; total: number } {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim())
  if (!m) throw new InvalidArgumentError('expected i/n, e.g. 2/4')
  const current = Number(m[1])
  const total = Number(m[2])
  if (total < 1 || current < 1 || current > total)
    throw new InvalidArgumentError(`expected i/n with 1 <= i <= n, got ${value}`)
  return { current, total }
}

function seedArg(value: string): number {
  const n = Number(value.trim())
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected an integer seed, as printed by a property run')
  return n | 0
}

function pathArg(value: string): string {
  if (!replayPathPattern.test(value.trim()))
    throw new InvalidArgumentError(`expected a replay path as printed by a failing property, e.g. ${replayPathExample}`)
  return value.trim()
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

function reporterArg(value: string, previous: string[] | undefined): string[] {
  const names = value
    .split(',')
    .map(s => s.trim())
    .filter(Boolean)
  if (names.length === 0) throw new InvalidArgumentError('expected reporter names, e.g. list,junit')
  return [...(previous ?? []), ...names]
}

export interface TestFlags {
  config?: string
  project: string[]
  grep?: string
  grepInvert?: string
  list?: boolean
  repeatEach?: number
  retries?: number
  workers?: string
  shard?: { current: number; total: number }
  timeout?: number
  globalTimeout?: number
  x?: boolean
  maxFailures?: number
  forbidOnly?: boolean
  failOnFlakyTests?: boolean
  passWithNoTests?: boolean
  reporter?: string[]
  lastFailed?: boolean
  output?: string
  quiet?: boolean
  seed?: number
  path?: string
  debug?: boolean
  keepOnFailure?: boolean
  trace?: TraceMode
}

/** Turns parsed flags into RunOptions (workers as a percentage are resolved later, against the cores). */
export function toRunOptions(filters: string[], flags: TestFlags, cwd: string): RunOptions {
  const overrides: ConfigOverrides = {}
  if (flags.timeout !== undefined) overrides.timeout = flags.timeout
  if (flags.retries !== undefined) overrides.retries = flags.retries
  if (flags.repeatEach !== undefined) overrides.repeatEach = flags.repeatEach
  if (flags.globalTimeout !== undefined) overrides.globalTimeout = flags.globalTimeout
  if (flags.maxFailures !== undefined) overrides.maxFailures = flags.maxFailures
  if (flags.x) overrides.maxFailures = 1
  if (flags.forbidOnly) overrides.forbidOnly = true
  if (flags.failOnFlakyTests) overrides.failOnFlakyTests = true
  if (flags.passWithNoTests) overrides.passWithNoTests = true
  if (flags.shard) overrides.shard = flags.shard
  if (flags.output) overrides.outputDir = flags.output
  if (flags.seed !== undefined) overrides.seed = flags.seed
  if (flags.trace !== undefined) overrides.trace = flags.trace
  if (flags.path !== undefined) {
    if (flags.seed === undefined)
      throw Object.assign(
        new Error('vt test: --path replays a run of one seed: give --seed too (a failing property prints both)'),
        { vtUserError: true },
      )
    overrides.seedPath = flags.path
  }
  if (flags.reporter) overrides.reporter = flags.reporter.map(name => [name])
  let workers = flags.workers
  if (flags.debug) {
    // As Playwright's --debug: one worker, nothing times out; tests pause at test.debug() and after failing.
    overrides.debug = 'all'
    overrides.timeout = 0
    overrides.globalTimeout = 0
    workers = '1'
  } else if (flags.keepOnFailure) overrides.debug = 'failures'
  return {
    cwd,
    config: flags.config,
    filters,
    projects: flags.project,
    grep: flags.grep,
    grepInvert: flags.grepInvert,
    list: !!flags.list,
    lastFailed: !!flags.lastFailed,
    quiet: !!flags.quiet,
    workers,
    overrides,
  }
}

const command: CliCommand = {
  name: 'test',
  register(program: Command) {
    program
      .command('test')
      .description('run the specs (*.vt.ts) of the config, optionally filtered')
      .argument('[filters...]', 'run only files matching these path substrings or regexes; file:line picks one test')
      .option('-c, --config <file>', 'config file, or a directory with vt.config.ts (default: ./vt.config.ts)')
      .option('--project <name>', 'run only this project; repeatable, * matches any characters', collect, [])
      .option('-g, --grep <regex>', 'run only tests whose "project file title" matches')
      .option('--grep-invert <regex>', 'skip tests whose "project file title" matches')
      .option('--list', 'list the tests (project, file:line, title) without running them')
      .option('--repeat-each <n>', 'run every test n times', intArg(1))
      .option('--retries <n>', 'retry a failed test up to n times', intArg(0))
      .option('-j, --workers <n|percent>', 'number of worker processes, or a percentage of the cores', workersArg)
      .option('--shard <i/n>', 'run only shard i of n, e.g. 2/4', parseShard)
      .option('--timeout <ms>', 'per-test timeout in milliseconds (0: none)', intArg(0))
      .option('--global-timeout <ms>', 'timeout of the whole run in milliseconds (0: none)', intArg(0))
      .option('-x', 'stop after the first failure')
      .option('--max-failures <n>', 'stop after n failures (0: never)', intArg(0))
      .option('--forbid-only', 'fail if a test.only or describe.only is left in the specs')
      .option('--fail-on-flaky-tests', 'fail the run if a test passed only on retry')
      .option('--pass-with-no-tests', 'succeed when no test is found')
      .option(
        '--reporter <names>',
        'reporters, comma separated: list, line, dot, json, junit or a module path',
        reporterArg,
      )
      .option('--last-failed', 'run only the tests that failed or did not run in the previous run')
      .option('--output <dir>', 'directory for test artifacts and .last-run.json (default: test-results)')
      .option('--seed <n>', 'seed of every property (test.prop): replays a printed run', seedArg)
      .option('--path <path>', 'with --seed: the replay path a failing property printed, e.g. 7:1:0', pathArg)
      .option(
        '--trace <mode>',
        "attach the VMs' console log and QMP transcript: off, on, retain-on-failure (default), on-first-retry",
        traceArg,
      )
      .option(
        '--debug',
        'one worker, no timeouts; pause at test.debug() and after a failure with the cluster alive (vt console reaches it)',
      )
      .option('--keep-on-failure', 'pause after a failed test, before its VMs and cluster are torn down')
      .addOption(new Option('--quiet', 'print less: no test output, no progress'))
      .action(async (filters: string[], flags: TestFlags) => {
        const { runTests } = await import('../../runner/main/run.ts')
        process.exitCode = await runTests(toRunOptions(filters, flags, process.cwd()))
      })
  },
}

export default command
