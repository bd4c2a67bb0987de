// Shared pieces of the built-in reporters: colors, titles, durations, failure formatting and the summary.
// Modelled on Playwright's terminal reporters: failures are printed with their title path, message, code frame,
// a stack cleaned of runner internals, attachments and output, once per failed attempt.
// Over 400 lines on purpose: all six built-in reporters format titles, failures and summaries with these pieces;
// keeping them in one file keeps one output style in one place.
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pc from 'picocolors'
import type { FullConfig } from '../src/config/types.ts'
import type { Suite, TestCase } from '../src/runner/model.ts'
import type { FullResult, Reporter, TestError, TestResult, TestStep } from '../src/runner/reporterApi.ts'

export type Colors = ReturnType<typeof pc.createColors>

/** A writable the terminal reporters print to: process.stdout by default, any stream in tests. */
export interface Output {
  write(chunk: string): unknown
  isTTY?: boolean
  columns?: number
  rows?: number
}

export interface BaseOptions {
  rootDir?: string
  outputDir?: string
  configDir?: string
  /** Where to print (default process.stdout). */
  stream?: Output
  /** Force colors on or off; by default NO_COLOR, FORCE_COLOR and whether the stream is a TTY decide. */
  colors?: boolean
  /** Force TTY behaviour (live updating lines) on or off. */
  tty?: boolean
  /** Do not print the stdout/stderr of tests while they run. */
  omitOutput?: boolean
}

/** Whether to use colors for `stream`: FORCE_COLOR wins, then NO_COLOR, then TTY and TERM. */
export function colorsEnabled(stream: Output | undefined, env = process.env): boolean {
  const force = env.FORCE_COLOR
  if (force !== undefined && force !== '' && force !== '0' && force !== 'false') return true
  if (force === '0' || force === 'false') return false
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  return !!stream?.isTTY && env.TERM !== 'dumb'
}

const ansiRegex =
  /[\u001B\u009B][[\]()#;?]*(?:(?:(?:[a-zA-Z\d]*(?:;[-a-zA-Z\d/#&.:=?%@~_]*)*)?\u0007)|(?:(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PR-TZcf-ntqry=><~]))/g

export function stripAnsi(s: string): string {
  return s.replace(ansiRegex, '')
}

/** Visible width of a string (ANSI sequences do not count). */
export function visibleLength(s: string): number {
  return [...stripAnsi(s)].length
}

/** Cuts `s` so that at most `width` characters are visible, keeping ANSI sequences intact. */
export function fitToWidth(s: string, width: number): string {
  if (visibleLength(s) <= width) return s
  let out = ''
  let visible = 0
  let last = 0
  ansiRegex.lastIndex = 0
  const push = (text: string) => {
    for (const ch of text) {
      if (visible >= width - 1) return false
      out += ch
      visible++
    }
    return true
  }
  for (let m = ansiRegex.exec(s); m; m = ansiRegex.exec(s)) {
    if (!push(s.slice(last, m.index))) break
    out += m[0]
    last = m.index + m[0].length
  }
  if (visible < width - 1) push(s.slice(last))
  ansiRegex.lastIndex = 0
  return out + '…' + (out.includes('\u001B[') ? '\u001B[0m' : '')
}

/** 350ms, 1.2s, 2.5m, 1.1h */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)}m`
  return `${(ms / 3_600_000).toFixed(1)}h`
}

/** Titles of the describes and the test, below the file. */
export function titlePathInFile(test: TestCase): string[] {
  const titles: string[] = [test.title]
  // Anonymous describes (`test.describe(() => ...)`) add no title.
  for (let s: Suite | undefined = test.parent; s && s.type === 'describe'; s = s.parent)
    if (s.title) titles.unshift(s.title)
  return titles
}

export function projectName(test: TestCase): string {
  return test.parent?.project()?.name ?? ''
}

export function relativePath(rootDir: string, file: string): string {
  const rel = path.relative(rootDir, file)
  return (rel.startsWith('..') || path.isAbsolute(rel) ? file : rel).split(path.sep).join('/')
}

/** `[project] › file.vt.ts:12:3 › describe › title` */
export function formatTestTitle(rootDir: string, test: TestCase, step?: TestStep): string {
  const project = projectName(test)
  const loc = `${relativePath(rootDir, test.location.file)}:${test.location.line}:${test.location.column}`
  const parts = [loc, ...titlePathInFile(test)]
  let title = (project ? `[${project}] › ` : '') + parts.join(' › ')
  if (step) title += ` › ${step.titlePath().join(' › ')}`
  return title
}

const vtSourceDirs = (() => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
  return [path.join(root, 'src') + path.sep, path.join(root, 'fixtures') + path.sep, path.join(root, 'bin') + path.sep]
})()

/** Whether a stack frame belongs to Node, a dependency or vt itself rather than to the user's code. */
function isInternalFrame(line: string): boolean {
  if (line.includes('node:internal') || line.includes('(node:') || line.includes('at node:')) return true
  if (line.includes(`${path.sep}node_modules${path.sep}`)) return true
  const file = line.replace(/^\s*at\s+/, '').replace(/^.*\(/, '')
  const abs = file.startsWith('file://') ? file.slice('file://'.length) : file
  return vtSourceDirs.some(dir => abs.startsWith(dir))
}

/** Splits a stack into message and the frames that point at user code, relative to rootDir. */
export function cleanStack(stack: string, rootDir: string): string[] {
  const frames = stack.split('\n').filter(l => /^\s+at\s/.test(l))
  const user = frames.filter(f => !isInternalFrame(f))
  return user.map(f => {
    let frame = f.trim().replace(/file:\/\//g, '')
    if (rootDir) frame = frame.split(rootDir + path.sep).join('')
    return frame
  })
}

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map(l => (l ? by + l : l))
    .join('\n')
}

/** Colors a rendered code frame: the failing line and its caret in red. */
function colorSnippet(snippet: string, c: Colors): string {
  return snippet
    .split('\n')
    .map(l => {
      if (/^\s*>/.test(l)) return c.red(c.bold(l))
      if (/^\s*\|\s*\^/.test(l)) return c.red(l)
      return c.dim(l)
    })
    .join('\n')
}

/**
 * The error's first lines as a stack shows them ("TypeError: boom"), which carry the error's name; the plain
 * message when the stack does not start with it.
 */
export function errorHeader(error: TestError, c: Colors): string {
  let header = error.message
  if (error.stack) {
    const at = error.stack.search(/\n\s+at\s/)
    const head = at < 0 ? error.stack : error.stack.slice(0, at)
    if (head.endsWith(error.message) && head.length - error.message.length < 80) header = head
  }
  return c.isColorSupported ? header : stripAnsi(header)
}

export function formatError(error: TestError, rootDir: string, c: Colors): string {
  const lines: string[] = []
  lines.push(errorHeader(error, c))
  if (error.snippet) lines.push('', colorSnippet(error.snippet, c))
  if (error.stack) {
    const frames = cleanStack(error.stack, rootDir)
    if (frames.length) lines.push('', ...frames.map(f => c.dim(`    at ${f.replace(/^at\s+/, '')}`)))
  } else if (error.location) {
    const file = relativePath(rootDir, error.location.file)
    lines.push('', c.dim(`    at ${file}:${error.location.line}:${error.location.column}`))
  }
  if (error.details && Object.keys(error.details).length) {
    lines.push('', c.dim(JSON.stringify(error.details)))
  }
  return lines.join('\n')
}

const MAX_OUTPUT_LINES = 50

function tailOutput(chunks: (string | Buffer)[]): string {
  const text = chunks.map(ch => (typeof ch === 'string' ? ch : ch.toString('utf8'))).join('')
  const lines = text.replace(/\n$/, '').split('\n')
  if (lines.length <= MAX_OUTPUT_LINES) return lines.join('\n')
  return [`… ${lines.length - MAX_OUTPUT_LINES} earlier lines`, ...lines.slice(-MAX_OUTPUT_LINES)].join('\n')
}

function separator(title: string, c: Colors, width: number): string {
  const rest = Math.max(3, Math.min(100, width) - visibleLength(title) - 1)
  return `${title} ${c.dim('─'.repeat(rest))}`
}

/** The failed step path inside a result, deepest first failing step. */
function failedStep(steps: TestStep[]): TestStep | undefined {
  for (const step of steps) {
    if (step.error) return failedStep(step.steps) ?? step
  }
  return undefined
}

/** Everything that went wrong in one attempt: errors, attachments, output. Empty for a passing attempt. */
export function formatResultFailure(
  test: TestCase,
  result: TestResult,
  rootDir: string,
  c: Colors,
  width: number,
): string[] {
  const out: string[] = []
  const errors = result.errors.length ? result.errors : result.error ? [result.error] : []
  if (result.status === 'passed' && test.expectedStatus === 'failed') {
    out.push(c.red('Expected to fail, but passed.'))
  }
  if (result.status === 'interrupted' && errors.length === 0) out.push(c.red('Test was interrupted.'))
  if (result.status === 'timedOut' && !errors.some(e => /timeout/i.test(e.message))) {
    out.push(c.red(`Test timeout of ${test.timeout}ms exceeded.`))
  }
  errors.forEach((error, i) => {
    if (i > 0) out.push('')
    out.push(formatError(error, rootDir, c))
  })
  result.attachments.forEach((a, i) => {
    out.push('', c.cyan(separator(`attachment #${i + 1}: ${a.name} (${a.contentType})`, c, width - 4)))
    if (a.path) out.push(c.cyan(`  ${relativePath(rootDir, a.path)}`))
    else if (a.body) {
      if (/^text\/|json|xml/.test(a.contentType) && a.body.length < 4096)
        out.push(indent(a.body.toString('utf8'), '  '))
      else out.push(c.dim(`  <${a.body.length} bytes>`))
    }
    out.push(c.cyan('─'.repeat(Math.min(60, width - 4))))
  })
  if (result.stdout.length) out.push('', separator(c.dim('stdout'), c, width - 4), tailOutput(result.stdout))
  if (result.stderr.length) out.push('', separator(c.red('stderr'), c, width - 4), tailOutput(result.stderr))
  return out
}

/** The numbered failure block printed at the end: one section per failed attempt (retries numbered). */
export function formatFailure(test: TestCase, index: number | undefined, rootDir: string, c: Colors, width: number) {
  const lines: string[] = []
  const header = `${index !== undefined ? `${index}) ` : ''}${formatTestTitle(rootDir, test)}`
  lines.push(c.red(separator(header, c, width - 2)))
  for (const result of test.results) {
    if (result.status === 'skipped' || result.status === test.expectedStatus) continue
    const body = formatResultFailure(test, result, rootDir, c, width)
    if (result.retry > 0) lines.push('', c.gray(separator(`Retry #${result.retry}`, c, width - 4)))
    const step = failedStep(result.steps)
    if (step && step.category === 'test.step') lines.push(c.dim(`in step: ${step.titlePath().join(' › ')}`))
    lines.push('', indent(body.join('\n'), '  '))
  }
  return indent(lines.join('\n'), '  ')
}

export interface Counts {
  passed: number
  failed: number
  flaky: number
  skipped: number
  interrupted: number
  didNotRun: number
  failedTests: TestCase[]
  flakyTests: TestCase[]
  interruptedTests: TestCase[]
}

/** Classifies every test of the run by its final outcome. */
export function countOutcomes(suite: Suite): Counts {
  const counts: Counts = {
    passed: 0,
    failed: 0,
    flaky: 0,
    skipped: 0,
    interrupted: 0,
    didNotRun: 0,
    failedTests: [],
    flakyTests: [],
    interruptedTests: [],
  }
  for (const test of suite.allTests()) {
    if (test.results.length === 0) {
      counts.didNotRun++
      continue
    }
    const outcome = test.outcome()
    if (outcome === 'skipped') counts.skipped++
    else if (outcome === 'expected') counts.passed++
    else if (outcome === 'flaky') {
      counts.flaky++
      counts.flakyTests.push(test)
    } else if (test.results[test.results.length - 1].status === 'interrupted') {
      counts.interrupted++
      counts.interruptedTests.push(test)
    } else {
      counts.failed++
      counts.failedTests.push(test)
    }
  }
  return counts
}

/** "3 passed, 1 failed, 1 flaky, 2 skipped (1.2s)" with colors. */
export function summaryLine(counts: Counts, durationMs: number, c: Colors, errors = 0): string {
  const parts: string[] = []
  if (counts.passed) parts.push(c.green(`${counts.passed} passed`))
  if (counts.failed) parts.push(c.red(`${counts.failed} failed`))
  if (counts.flaky) parts.push(c.yellow(`${counts.flaky} flaky`))
  if (counts.skipped) parts.push(c.yellow(`${counts.skipped} skipped`))
  if (counts.interrupted) parts.push(c.red(`${counts.interrupted} interrupted`))
  if (counts.didNotRun) parts.push(c.dim(`${counts.didNotRun} did not run`))
  if (errors) parts.push(c.red(`${errors} ${errors === 1 ? 'error' : 'errors'}`))
  if (parts.length === 0) parts.push('no tests')
  return `${parts.join(', ')} ${c.dim(`(${formatDuration(durationMs)})`)}`
}

/** Will the runner run this test again after `result`? */
export function willRetry(test: TestCase, result: TestResult): boolean {
  if (result.status === 'skipped' || result.status === 'interrupted') return false
  if (result.status === test.expectedStatus) return false
  return test.results.length <= test.retries
}

/** Base class of list, line and dot: configuration, output, global errors, the final failures and summary. */
export abstract class TerminalReporter implements Reporter {
  protected config!: FullConfig
  protected suite!: Suite
  protected readonly stream: Output
  protected readonly c: Colors
  protected readonly tty: boolean
  protected readonly omitOutput: boolean
  protected rootDir: string
  protected readonly globalErrors: TestError[] = []
  protected totalTests = 0
  protected finished = 0

  constructor(options: BaseOptions = {}) {
    this.stream = options.stream ?? process.stdout
    this.tty = options.tty ?? (!!this.stream.isTTY && process.env.TERM !== 'dumb')
    this.c = pc.createColors(options.colors ?? colorsEnabled(this.stream))
    this.omitOutput = !!options.omitOutput
    this.rootDir = options.rootDir ?? process.cwd()
  }

  printsToStdio(): boolean {
    return true
  }

  protected get width(): number {
    const cols = this.stream.columns ?? (process.stdout.isTTY ? process.stdout.columns : 0)
    return cols && cols > 20 ? cols : 100
  }

  protected write(text: string): void {
    this.stream.write(text)
  }

  onBegin(config: FullConfig, suite: Suite): void {
    this.config = config
    this.suite = suite
    if (config.rootDir) this.rootDir = config.rootDir
    this.totalTests = suite.allTests().length
    if (config.quiet) return
    const workers = Math.min(config.workers, Math.max(1, this.totalTests))
    const shard = config.shard ? `, shard ${config.shard.current} of ${config.shard.total}` : ''
    this.write(
      `\nRunning ${this.totalTests} test${this.totalTests === 1 ? '' : 's'} using ${workers} worker${
        workers === 1 ? '' : 's'
      }${shard}\n\n`,
    )
  }

  onStdOut(chunk: string | Buffer, test?: TestCase, result?: TestResult): void {
    this.dumpOutput(chunk, test, result, false)
  }

  onStdErr(chunk: string | Buffer, test?: TestCase, result?: TestResult): void {
    this.dumpOutput(chunk, test, result, true)
  }

  /** Prints test output as it comes, unless quiet (list and line override where it goes). */
  protected dumpOutput(chunk: string | Buffer, _test: TestCase | undefined, _r: TestResult | undefined, err: boolean) {
    if (this.omitOutput || this.config?.quiet) return
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8')
    this.writeOutput(err ? this.c.red(text) : text)
  }

  protected writeOutput(text: string): void {
    this.write(text.endsWith('\n') ? text : text + '\n')
  }

  onError(error: TestError): void {
    this.globalErrors.push(error)
  }

  onTestEnd(_test: TestCase, _result: TestResult): void {
    this.finished++
  }

  /** Global errors, numbered failures and flaky tests, then the summary. */
  protected epilogue(result: FullResult, printFailures = true): string {
    const c = this.c
    const out: string[] = []
    for (const error of this.globalErrors) out.push(indent(formatError(error, this.rootDir, c), '  '), '')
    const counts = countOutcomes(this.suite)
    let index = 0
    for (const test of printFailures ? [...counts.failedTests, ...counts.flakyTests, ...counts.interruptedTests] : []) {
      if (counts.interruptedTests.includes(test) && !test.results.some(r => r.errors.length || r.error)) continue
      out.push(formatFailure(test, ++index, this.rootDir, c, this.width), '')
    }
    const listed = (label: string, tests: TestCase[], color: (s: string) => string) => {
      if (!tests.length) return
      out.push(color(`  ${tests.length} ${label}`))
      for (const t of tests) out.push(color(`    ${formatTestTitle(this.rootDir, t)}`))
    }
    listed('failed', counts.failedTests, c.red)
    listed('flaky', counts.flakyTests, c.yellow)
    listed('interrupted', counts.interruptedTests, c.red)
    if (this.globalErrors.length) {
      const n = this.globalErrors.length
      out.push(c.red(`  ${n} ${n === 1 ? 'error was' : 'errors were'} not a part of any test, see above for details`))
    }
    if (result.status === 'timedout')
      out.push(c.red(`  Timed out waiting ${this.config.globalTimeout / 1000}s for the run`))
    if (result.status === 'interrupted' && !counts.interrupted) out.push(c.red('  The run was interrupted'))
    out.push(`  ${summaryLine(counts, result.duration, c, this.globalErrors.length)}`)
    return out.join('\n') + '\n'
  }

  onEnd(result: FullResult): void {
    this.write(this.epilogue(result))
  }
}
