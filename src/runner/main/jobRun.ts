// One job on one worker: the state machine of a test group's run. It turns the worker's messages into
// TestResults and steps for the reporters, ends what the worker left unfinished (done, crash, interruption), and
// says what must run again. The dispatcher (dispatcher.ts) owns the slots, the queue and the workers.
import type { TestEndMessage, WorkerToMain } from '../ipc.ts'
import type { TestCase } from '../model.ts'
import {
  type Location,
  newTestResult,
  type TestError,
  type TestResult,
  type TestStatus,
  type TestStep,
} from '../results.ts'
import { isUnexpected } from './failureTracker.ts'
import type { Multiplexer } from './reporters.ts'
import { describeExit, type WorkerExit, type WorkerHost } from './workerHost.ts'

class StepImpl implements TestStep {
  steps: TestStep[] = []
  duration = -1
  error?: TestError
  constructor(
    readonly title: string,
    readonly category: string,
    readonly startTime: Date,
    readonly location?: Location,
    readonly parent?: TestStep,
  ) {}
  titlePath(): string[] {
    return [...(this.parent ? this.parent.titlePath() : []), this.title]
  }
}

interface Running {
  test: TestCase
  result: TestResult
  steps: Map<string, StepImpl>
}

/** A new attempt of `test` on `worker`, begun for the reporters. */
export function beginResult(test: TestCase, worker: WorkerHost, reporter: Multiplexer, startTime: Date): TestResult {
  const { workerIndex, parallelIndex } = worker.params
  const result = newTestResult({ retry: test.results.length, workerIndex, parallelIndex, startTime })
  test.results.push(result)
  reporter.onTestBegin(test, result)
  return result
}

/** What a job needs from the dispatcher. */
export interface JobHooks {
  reporter: Multiplexer
  interrupted(): boolean
  reuseWorkerAfterFailure: boolean
  /** The worker's last stderr, as a suffix for error messages. */
  lastStderr(): string
  afterTestEnd(test: TestCase, result: TestResult): void
  /** Begin + end of a test the worker never reported. */
  reportSynthetic(test: TestCase, status: TestStatus, errors: TestError[]): void
  onGlobalError(error: TestError): void
  /** The worker must not be reused (failure, unusable, interrupted). */
  replaceWorker(): void
  /** The worker died: its slot is empty. */
  forgetWorker(): void
  /** Failed tests (retries apply) and tests that did not run go back to the queue. */
  requeue(failed: TestCase[], notRun: TestCase[]): void
}

/** Runs `tests` of `file` on `worker` until the worker says done or exits. */
export function runJobOnWorker(worker: WorkerHost, tests: TestCase[], file: string, h: JobHooks): Promise<void> {
  const byId = new Map(tests.map(t => [t.id, t]))
  const notEnded = new Set(tests)
  const running = new Map<string, Running>()
  const failedInJob: TestCase[] = []
  const reporter = h.reporter

  return new Promise<void>(resolve => {
    const finish = () => {
      worker.off('message', onMessage)
      worker.off('exit', onExit)
      resolve()
    }

    const endTest = (test: TestCase, r: Running, msg: Omit<TestEndMessage, 'type' | 'testId'>) => {
      const { result } = r
      result.duration = msg.duration
      result.status = msg.status
      result.errors = msg.errors
      result.error = msg.errors[0]
      result.annotations = msg.annotations
      test.expectedStatus = msg.expectedStatus
      test.annotations.splice(0, test.annotations.length, ...msg.annotations)
      if (msg.timeout) test.timeout = msg.timeout
      running.delete(test.id)
      notEnded.delete(test)
      reporter.onTestEnd(test, result)
      if (isUnexpected(test, result)) failedInJob.push(test)
      h.afterTestEnd(test, result)
    }

    const onMessage = (msg: WorkerToMain) => {
      switch (msg.type) {
        case 'testBegin': {
          const test = byId.get(msg.testId)
          if (!test) return
          const result = beginResult(test, worker, reporter, new Date(msg.startWallTime))
          running.set(test.id, { test, result, steps: new Map() })
          return
        }
        case 'stepBegin': {
          const r = running.get(msg.testId)
          if (!r) return
          const parent = msg.parentStepId ? r.steps.get(msg.parentStepId) : undefined
          const step = new StepImpl(msg.title, msg.category, new Date(msg.wallTime), msg.location, parent)
          r.steps.set(msg.stepId, step)
          ;(parent ? parent.steps : r.result.steps).push(step)
          reporter.onStepBegin(r.test, r.result, step)
          return
        }
        case 'stepEnd': {
          const r = running.get(msg.testId)
          const step = r?.steps.get(msg.stepId)
          if (!r || !step) return
          step.duration = Math.max(0, msg.wallTime - step.startTime.getTime())
          if (msg.error) step.error = msg.error
          reporter.onStepEnd(r.test, r.result, step)
          return
        }
        case 'progress': {
          const r = running.get(msg.testId)
          if (!r) return
          const step = msg.stepId ? r.steps.get(msg.stepId) : undefined
          // A step that already ended (a late, throttled report) shows nothing more.
          if (msg.stepId && (!step || step.duration >= 0)) return
          reporter.onProgress(r.test, r.result, step, msg.progress)
          return
        }
        case 'stdout':
        case 'stderr': {
          const chunk = msg.binary ? Buffer.from(msg.text, 'base64') : msg.text
          const r = msg.testId ? running.get(msg.testId) : undefined
          if (r) (msg.type === 'stdout' ? r.result.stdout : r.result.stderr).push(chunk)
          if (msg.type === 'stdout') reporter.onStdOut(chunk, r?.test, r?.result)
          else reporter.onStdErr(chunk, r?.test, r?.result)
          return
        }
        case 'attach': {
          const r = running.get(msg.testId)
          if (!r) return
          r.result.attachments.push({
            name: msg.name,
            contentType: msg.contentType,
            ...(msg.path ? { path: msg.path } : {}),
            ...(msg.body !== undefined ? { body: Buffer.from(msg.body, 'base64') } : {}),
          })
          return
        }
        case 'testEnd': {
          const r = running.get(msg.testId)
          const test = byId.get(msg.testId)
          if (!test) return
          // A test the worker skipped without beginning it (e.g. rest of a failed serial group) still gets a result.
          const entry =
            r ??
            (() => {
              const result = beginResult(test, worker, reporter, new Date())
              return { test, result, steps: new Map() }
            })()
          endTest(test, entry, msg)
          return
        }
        case 'done': {
          const remainingIds = new Set(msg.remaining)
          // Tests the worker began but never ended: it gave up on them mid-run.
          for (const r of [...running.values()])
            endTest(r.test, r, {
              duration: Date.now() - r.result.startTime.getTime(),
              status: h.interrupted() ? 'interrupted' : 'failed',
              errors: h.interrupted()
                ? []
                : [{ message: 'Error: the worker finished the group without ending this test' }],
              expectedStatus: r.test.expectedStatus,
              annotations: r.result.annotations,
              timeout: r.test.timeout,
            })
          const notRun = tests.filter(t => notEnded.has(t) || (remainingIds.has(t.id) && !t.results.length))
          if (msg.fatalErrors.length > 0) {
            if (notRun.length > 0 && !h.interrupted()) {
              // The worker could not run them (e.g. a worker fixture failed to set up): they fail with its reason.
              for (const test of notRun) {
                h.reportSynthetic(test, 'failed', msg.fatalErrors)
                failedInJob.push(test)
              }
            } else {
              for (const error of msg.fatalErrors) h.onGlobalError(error)
            }
          }
          const replace = msg.unusable || (failedInJob.length > 0 && !h.reuseWorkerAfterFailure) || h.interrupted()
          if (replace) h.replaceWorker()
          h.requeue(failedInJob, msg.fatalErrors.length > 0 ? [] : notRun)
          finish()
          return
        }
      }
    }

    const onExit = (exit: WorkerExit) => {
      const why = `worker process exited unexpectedly (${describeExit(exit)})`
      for (const r of [...running.values()]) {
        const status: TestStatus = h.interrupted() ? 'interrupted' : 'failed'
        const title = r.test.titlePath().filter(Boolean).join(' › ')
        endTest(r.test, r, {
          duration: Date.now() - r.result.startTime.getTime(),
          status,
          errors: status === 'failed' ? [{ message: `Error: ${why} while running "${title}"${h.lastStderr()}` }] : [],
          expectedStatus: r.test.expectedStatus,
          annotations: r.result.annotations,
          timeout: r.test.timeout,
        })
      }
      let notRun = tests.filter(t => notEnded.has(t))
      if (!h.interrupted() && failedInJob.length === 0 && notRun.length > 0) {
        // Died between tests (e.g. in worker fixture setup): blame the next test so the run always progresses.
        const [first, ...rest] = notRun
        h.reportSynthetic(first, 'failed', [
          {
            message: `Error: ${why} before "${first.titlePath().filter(Boolean).join(' › ')}" could finish${h.lastStderr()}`,
          },
        ])
        failedInJob.push(first)
        notRun = rest
      }
      h.forgetWorker()
      h.requeue(failedInJob, notRun)
      finish()
    }

    worker.on('message', onMessage)
    worker.on('exit', onExit)
    if (worker.hasExited) return onExit({ code: null, signal: null, expected: false })
    worker.run({
      type: 'run',
      file,
      entries: tests.map(t => ({ testId: t.id, retry: t.results.length })),
    })
  })
}
