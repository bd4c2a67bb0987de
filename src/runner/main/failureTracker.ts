// Counts what decides the run's outcome while it runs: final unexpected failures (after retries) for
// maxFailures, and global errors (load errors, worker teardown errors) for the exit code.
import type { TestCase } from '../model.ts'
import type { TestResult } from '../results.ts'

/** Counts final unexpected failures (after retries) for maxFailures, and global errors for the exit code. */
export class FailureTracker {
  failures = 0
  globalErrors = 0
  constructor(private readonly maxFailures: number) {}

  onTestEnd(test: TestCase, result: TestResult): void {
    if (isUnexpected(test, result) && test.results.length > test.retries) this.failures++
  }
  onGlobalError(): void {
    this.globalErrors++
  }
  reachedMaxFailures(): boolean {
    return this.maxFailures > 0 && this.failures >= this.maxFailures
  }
}

export function isUnexpected(test: TestCase, result: TestResult): boolean {
  return result.status !== 'skipped' && result.status !== 'interrupted' && result.status !== test.expectedStatus
}
