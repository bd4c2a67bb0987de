// `list`: one line per test as it ends (✓ ✘ -, project, file:line:col, title path, duration, retry). On a TTY
// the line appears when the test starts, shows the running step and the progress of long work (image build,
// boot, migration: percent, bytes, elapsed time, ticking every second), and is rewritten in place when it ends.
// Off a TTY (CI logs) progress is printed as sparse lines of its own (reporters/progress.ts decides when).
import type { TestCase } from '../src/runner/model.ts'
import type { FullResult, Progress, TestResult, TestStep } from '../src/runner/reporterApi.ts'
import {
  type BaseOptions,
  fitToWidth,
  formatDuration,
  formatTestTitle,
  TerminalReporter,
  visibleLength,
} from './base.ts'
import { formatProgress, SparseProgress } from './progress.ts'

interface Live {
  test: TestCase
  step?: TestStep
  progress: Progress
  since: number
}

export default class ListReporter extends TerminalReporter {
  /** Rows printed so far (TTY mode), to find a test's line again. */
  private lastRow = 0
  private readonly rowOf = new Map<TestResult, number>()
  private readonly indexOf = new Map<TestResult, number>()
  private nextIndex = 1
  /** The latest progress of each running test (TTY), redrawn every second while there is any. */
  private readonly live = new Map<TestResult, Live>()
  private ticker?: NodeJS.Timeout
  private readonly sparse = new SparseProgress()

  constructor(options: BaseOptions = {}) {
    super(options)
  }

  protected override write(text: string): void {
    if (this.tty) {
      // Count terminal rows, not lines: a line wider than the terminal wraps onto several.
      const lines = text.split('\n')
      lines.pop()
      for (const line of lines) this.lastRow += Math.max(1, Math.ceil(visibleLength(line) / this.width))
    }
    super.write(text)
  }

  onTestBegin(test: TestCase, result: TestResult): void {
    this.indexOf.set(result, this.nextIndex++)
    if (!this.tty || this.config?.quiet) return
    this.rowOf.set(result, this.lastRow)
    this.write(this.fit(this.line(test, result, '  ', this.c.dim)) + '\n')
  }

  onStepBegin(test: TestCase, result: TestResult, step: TestStep): void {
    if (!this.tty || step.category !== 'test.step') return
    this.updateRow(result, this.line(test, result, '  ', this.c.dim, ` › ${step.titlePath().join(' › ')}`))
  }

  onStepEnd(test: TestCase, result: TestResult, step: TestStep): void {
    this.sparse.forget(step)
    const live = this.live.get(result)
    if (live?.step === step) {
      this.live.delete(result)
      if (this.tty) this.updateRow(result, this.line(test, result, '  ', this.c.dim))
    }
    if (!this.tty || step.category !== 'test.step') return
    const parent = step.parent && step.parent.category === 'test.step' ? step.parent : undefined
    const suffix = parent ? ` › ${parent.titlePath().join(' › ')}` : ''
    this.updateRow(result, this.line(test, result, '  ', this.c.dim, suffix))
  }

  onProgress(test: TestCase, result: TestResult, step: TestStep | undefined, progress: Progress): void {
    if (this.config?.quiet) return
    const prev = this.live.get(result)
    // An empty report ends what the step (or test) showed: the work is done, the step goes on.
    if (progress.message === undefined && progress.percent === undefined && progress.bytes === undefined) {
      if (prev && prev.step === step) {
        this.live.delete(result)
        if (this.tty) this.updateRow(result, this.line(test, result, '  ', this.c.dim))
      }
      return
    }
    const since = step ? step.startTime.getTime() : prev && !prev.step ? prev.since : Date.now()
    const live: Live = { test, step, progress, since }
    if (!this.tty) {
      if (this.sparse.shouldPrint(step ?? result, progress))
        this.write(`  ${this.c.dim('⋯')} ${this.c.dim(this.progressText(result, live))}\n`)
      return
    }
    this.live.set(result, live)
    this.drawProgress(result, live)
    this.ticker ??= setInterval(() => {
      for (const [r, l] of this.live) this.drawProgress(r, l)
      if (this.live.size === 0) this.stopTicker()
    }, 1000)
    this.ticker.unref?.()
  }

  private progressText(result: TestResult, live: Live): string {
    const where = live.step ? ` › ${live.step.titlePath().join(' › ')}` : ''
    const index = this.indexOf.get(result)
    return `${index ?? ''} ${formatTestTitle(this.rootDir, live.test)}${where}: ${formatProgress(live.progress, Date.now() - live.since)}`
  }

  private drawProgress(result: TestResult, live: Live): void {
    const where = live.step ? ` › ${live.step.titlePath().join(' › ')}` : ''
    const text = this.line(live.test, result, '  ', this.c.dim, where)
    this.updateRow(result, `${text} ${this.c.cyan(formatProgress(live.progress, Date.now() - live.since))}`)
  }

  private stopTicker(): void {
    if (this.ticker) clearInterval(this.ticker)
    this.ticker = undefined
  }

  override onTestEnd(test: TestCase, result: TestResult): void {
    this.live.delete(result)
    this.sparse.forget(result)
    super.onTestEnd(test, result)
    if (this.config?.quiet) return
    const c = this.c
    let mark: string
    let color: (s: string) => string
    if (result.status === 'skipped') [mark, color] = [c.yellow('-'), c.yellow]
    else if (result.status === test.expectedStatus) [mark, color] = [c.green('✓'), c.dim]
    else [mark, color] = [c.red('✘'), c.red]
    const text = this.line(test, result, `${mark} `, color, '', true)
    if (this.tty && this.rowOf.has(result)) this.updateRow(result, text)
    else this.write(this.fit(text) + '\n')
    this.rowOf.delete(result)
    if (result.status !== test.expectedStatus && result.status !== 'skipped') this.printFailedSteps(result.steps, 6)
  }

  private printFailedSteps(steps: TestStep[], depth: number): void {
    for (const step of steps) {
      if (!step.error || step.category !== 'test.step') continue
      this.write(
        this.fit(
          `${' '.repeat(depth)}${this.c.red('✘')} ${step.title} ${this.c.dim(`(${formatDuration(step.duration)})`)}`,
        ) + '\n',
      )
      this.printFailedSteps(step.steps, depth + 2)
    }
  }

  private line(
    test: TestCase,
    result: TestResult,
    prefix: string,
    color: (s: string) => string,
    suffix = '',
    done = false,
  ): string {
    const index = String(this.indexOf.get(result) ?? '').padStart(String(this.totalTests).length)
    const retry = result.retry ? this.c.yellow(` (retry #${result.retry})`) : ''
    const duration = done && result.status !== 'skipped' ? this.c.dim(` (${formatDuration(result.duration)})`) : ''
    const title = formatTestTitle(this.rootDir, test) + suffix
    return `  ${prefix}${this.c.dim(index)} ${color(title)}${retry}${duration}`
  }

  private fit(text: string): string {
    return this.tty ? fitToWidth(text, this.width) : text
  }

  /** Rewrites the test's own row in place; falls back to a new line when it scrolled out of reach. */
  private updateRow(result: TestResult, text: string): void {
    const row = this.rowOf.get(result)
    const up = row === undefined ? 0 : this.lastRow - row
    // A pseudo-terminal without a size (e.g. under script(1)) reports 0 rows: assume a classic 24.
    const screen = this.stream.rows || Number(process.env.LINES) || 24
    if (row === undefined || up <= 0 || up >= screen) {
      this.write(this.fit(text) + '\n')
      this.rowOf.set(result, this.lastRow - 1)
      return
    }
    this.stream.write(`\u001B[${up}A\r\u001B[2K${this.fit(text)}\u001B[${up}B\r`)
  }

  override onEnd(result: FullResult): void {
    this.stopTicker()
    this.write('\n')
    super.onEnd(result)
  }
}
