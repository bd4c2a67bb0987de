// `dot` (the default under CI): one character per finished attempt, wrapped at the terminal width, then the
// failures and the summary. · passed, F failed, T timed out, I interrupted, ± flaky, ° skipped,
// × failed and will be retried.
import type { TestCase } from '../src/runner/model.ts'
import type { FullResult, TestResult } from '../src/runner/reporterApi.ts'
import { TerminalReporter, willRetry } from './base.ts'

export default class DotReporter extends TerminalReporter {
  private column = 0

  /** Test output would break the rows of dots: dot keeps it for the failure details only. */
  protected override dumpOutput(): void {}

  override onTestEnd(test: TestCase, result: TestResult): void {
    super.onTestEnd(test, result)
    if (this.config?.quiet) return
    if (this.column >= Math.min(this.width, 80)) {
      this.write('\n')
      this.column = 0
    }
    this.column++
    this.write(this.mark(test, result))
  }

  private mark(test: TestCase, result: TestResult): string {
    const c = this.c
    if (willRetry(test, result)) return c.gray('×')
    if (result.status === 'skipped') return c.yellow('°')
    switch (test.outcome()) {
      case 'expected':
        return c.green('·')
      case 'flaky':
        return c.yellow('±')
      case 'skipped':
        return c.yellow('°')
      default:
        if (result.status === 'timedOut') return c.red('T')
        if (result.status === 'interrupted') return c.red('I')
        return c.red('F')
    }
  }

  override onEnd(result: FullResult): void {
    this.write(this.column ? '\n\n' : '\n')
    super.onEnd(result)
  }
}
