// `null`: reports nothing (for benchmarks, or when only the exit code matters).
import type { Reporter } from '../src/runner/reporterApi.ts'

export default class NullReporter implements Reporter {
  printsToStdio(): boolean {
    return false
  }
}
