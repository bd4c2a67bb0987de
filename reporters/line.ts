// `line`: a single status line rewritten as tests finish (on a TTY), failures printed in full as they happen,
// the summary at the end. Off a TTY it prints a progress line every tenth of the run instead of rewriting.
// On a TTY the status line also shows the progress of long work (image build, boot, migration).
import type { FullConfig } from '../src/config/types.ts'
import type { Suite, TestCase } from '../src/runner/model.ts'
import type { FullResult, Progress, TestResult, TestStep } from '../src/runner/reporterApi.ts'
import { fitToWidth, formatFailure, formatTestTitle, TerminalReporter, willRetry } from './base.ts'
import { formatProgress } from './progress.ts'

export default class LineReporter extends TerminalReporter {
  private failures = 0
  private hasLine = false
  private lastProgress = 0

  override onBegin(config: FullConfig, suite: Suite): void {
    super.onBegin(config, suite)
    if (this.tty && !config.quiet) this.write('\n')
  }

  protected override writeOutput(text: string): void {
    this.clearLine()
    super.writeOutput(text)
    this.hasLine = false
  }

  onTestBegin(test: TestCase, _result: TestResult): void {
    if (this.tty) this.status(test)
  }

  onStepBegin(test: TestCase, _result: TestResult, step: TestStep): void {
    if (this.tty && step.category === 'test.step') this.status(test, step)
  }

  onStepEnd(test: TestCase, _result: TestResult, step: TestStep): void {
    if (this.tty && step.category === 'test.step') this.status(test, step.parent)
  }

  override onTestEnd(test: TestCase, result: TestResult): void {
    super.onTestEnd(test, result)
    if (this.config?.quiet) return
    const outcome = test.outcome()
    const final = !willRetry(test, result)
    if (final && (outcome === 'unexpected' || outcome === 'flaky') && result.status !== 'skipped') {
      this.clearLine()
      this.write(`\n${formatFailure(test, ++this.failures, this.rootDir, this.c, this.width)}\n\n`)
      this.hasLine = false
    }
    if (this.tty) this.status(test)
    else {
      const step = Math.max(1, Math.ceil(this.totalTests / 10))
      if (this.finished - this.lastProgress >= step || this.finished === this.totalTests) {
        this.lastProgress = this.finished
        this.write(`[${this.finished}/${this.totalTests}] ${formatTestTitle(this.rootDir, test)}\n`)
      }
    }
  }

  onProgress(test: TestCase, _result: TestResult, step: TestStep | undefined, progress: Progress): void {
    if (!this.tty || this.config?.quiet) return
    const since = step ? Date.now() - step.startTime.getTime() : undefined
    const text = formatProgress(progress, since)
    this.status(test, step, text ? ` ${this.c.cyan(text)}` : '')
  }

  private status(test: TestCase, step?: TestStep, suffix = ''): void {
    const prefix = `[${this.finished}/${this.totalTests}]`
    const failed = this.failures ? this.c.red(` (${this.failures} failed)`) : ''
    const text = `${prefix}${failed} ${formatTestTitle(this.rootDir, test, step?.category === 'test.step' ? step : undefined)}${suffix}`
    this.clearLine()
    this.write(fitToWidth(text, this.width) + '\n')
    this.hasLine = true
  }

  /** Moves up onto the status line and clears it. */
  private clearLine(): void {
    if (this.tty && this.hasLine) this.stream.write('\u001B[1A\u001B[2K')
    this.hasLine = false
  }

  override onEnd(result: FullResult): void {
    this.clearLine()
    this.write('\n')
    // Failures were printed as they happened: the summary lists them without repeating the details.
    this.write(this.epilogue(result, false))
  }
}
