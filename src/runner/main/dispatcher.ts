// The dispatcher: a pool of worker slots running test groups. A free slot takes the first queued group whose
// worker hash matches its idle worker (reuse), else stops that worker and forks a fresh one. Results stream
// back as IPC messages and become TestResults for the reporters. Failed tests are re-queued for retry (a serial
// describe as a whole); a worker that dies mid-test fails that test and its group's other tests go on elsewhere.
import type { ClusterConnectionInfo } from '../../config/cluster.ts'
import type { FullConfig, FullProject } from '../../config/types.ts'
import { SyncServer } from '../../sync/server.ts'
import { serveWorker } from '../../sync/transport.ts'
import type { SerializedConfig, TestEndMessage, WorkerToMain } from '../ipc.ts'
import type { TestCase } from '../model.ts'
import type { Location, TestError, TestResult, TestStatus, TestStep } from '../reporterApi.ts'
import { newTestResult } from '../results.ts'
import type { Multiplexer } from './reporters.ts'
import { outermostSerialSuite, type TestGroup } from './testGroups.ts'
import { describeExit, type WorkerExit, WorkerHost } from './workerHost.ts'

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

/** Starts a project's cluster on first use and hands out its connection info. */
export interface ClusterProvider {
  infoFor(project: FullProject): Promise<ClusterConnectionInfo | undefined>
  stopFor(project: FullProject): Promise<void>
}

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

interface Job {
  group: TestGroup
  tests: TestCase[]
}

interface Slot {
  index: number
  busy: boolean
  worker?: WorkerHost
}

interface Running {
  test: TestCase
  result: TestResult
  steps: Map<string, StepImpl>
}

export interface DispatcherOptions {
  config: FullConfig
  serializedConfig: SerializedConfig
  reporter: Multiplexer
  failures: FailureTracker
  clusters: ClusterProvider
  env: NodeJS.ProcessEnv
  /** How long a worker may take to tear down after 'stop' before it is killed. */
  stopGraceMs?: number
  /** Barriers and keys of the run (one server for every worker). */
  sync?: SyncServer
}

function newResult(retry: number, workerIndex: number, parallelIndex: number, startTime: Date): TestResult {
  return newTestResult({ retry, workerIndex, parallelIndex, startTime })
}

export class Dispatcher {
  private readonly queue: Job[] = []
  private readonly slots: Slot[]
  private readonly pendingByProject = new Map<string, number>()
  private readonly projects: Map<string, FullProject>
  private readonly background = new Set<Promise<unknown>>()
  private readonly allWorkers = new Set<WorkerHost>()
  /** Workers between their job's start and its done message. */
  private readonly inJob = new WeakSet<WorkerHost>()
  private readonly failedProjects = new Set<string>()
  private nextWorkerIndex = 0
  private interrupted = false
  private killed = false
  private wake?: () => void
  private woken = false
  readonly sync: SyncServer

  constructor(private readonly o: DispatcherOptions) {
    this.slots = Array.from({ length: Math.max(1, o.config.workers) }, (_, index) => ({ index, busy: false }))
    this.projects = new Map(o.config.projects.map(p => [p.id, p]))
    this.sync = o.sync ?? new SyncServer()
  }

  get isInterrupted(): boolean {
    return this.interrupted
  }

  /** Runs the groups to completion (or until interrupted). Tests that never ran keep no result. */
  async run(groups: TestGroup[]): Promise<void> {
    for (const group of groups) this.enqueue({ group, tests: [...group.tests] }, false)
    while (true) {
      this.schedule()
      if (this.slots.every(s => !s.busy) && (this.queue.length === 0 || this.interrupted)) break
      if (this.woken) this.woken = false
      else await new Promise<void>(resolve => (this.wake = resolve))
    }
    this.queue.length = 0
    // Finished projects stop their workers and clusters in the background; the next phase starts after that.
    while (this.background.size > 0) await Promise.all([...this.background])
  }

  /** Graceful interruption: start nothing new; running tests end as 'interrupted', fixtures are torn down. */
  interrupt(): void {
    if (this.interrupted) return
    this.interrupted = true
    for (const s of this.slots) if (s.worker && s.busy) this.stopWorker(s, s.worker)
    this.notify()
  }

  /** Second Ctrl-C: kill every worker now. */
  kill(): void {
    this.interrupted = true
    this.killed = true
    for (const w of this.allWorkers) w.kill()
    this.notify()
  }

  /** Stops every worker (tearing down worker fixtures) and waits for background cluster stops. */
  async shutdown(): Promise<void> {
    const stops = [...this.allWorkers].map(w => w.stop(this.o.stopGraceMs))
    for (const s of this.slots) s.worker = undefined
    await Promise.all(stops)
    while (this.background.size > 0) await Promise.all([...this.background])
  }

  private notify(): void {
    const wake = this.wake
    this.wake = undefined
    // A notification while the run loop is not waiting must not be lost.
    if (wake) wake()
    else this.woken = true
  }

  private enqueue(job: Job, front: boolean): void {
    const id = job.group.projectId
    this.pendingByProject.set(id, (this.pendingByProject.get(id) ?? 0) + 1)
    if (front) this.queue.unshift(job)
    else this.queue.push(job)
  }

  private usableWorker(slot: Slot): WorkerHost | undefined {
    const w = slot.worker
    return w && !w.retiring && !w.hasExited ? w : undefined
  }

  /**
   * Hands queued jobs to free slots: first to idle workers with the same hash (reuse), then to empty slots, and
   * only then replaces an idle worker of another hash. A job that some idle worker could take is left to it.
   */
  private schedule(): void {
    if (this.interrupted) return
    const take = (slot: Slot, index: number) => {
      const [job] = this.queue.splice(index, 1)
      slot.busy = true
      void this.runOnSlot(slot, job)
    }
    for (const slot of this.slots) {
      const worker = this.usableWorker(slot)
      if (slot.busy || !worker || this.queue.length === 0) continue
      const index = this.queue.findIndex(j => j.group.workerHash === worker.workerHash)
      if (index !== -1) take(slot, index)
    }
    const idleHashes = () =>
      new Set(
        this.slots
          .filter(s => !s.busy)
          .map(s => this.usableWorker(s)?.workerHash)
          .filter(h => h !== undefined),
      )
    for (const pass of ['empty', 'replace'] as const) {
      for (const slot of this.slots) {
        if (slot.busy || this.queue.length === 0) continue
        const hasWorker = this.usableWorker(slot) !== undefined
        if ((pass === 'empty') === hasWorker) continue
        const hashes = idleHashes()
        const index = this.queue.findIndex(j => !hashes.has(j.group.workerHash))
        if (index !== -1) take(slot, index)
      }
    }
  }

  private stopWorker(slot: Slot, worker: WorkerHost): Promise<WorkerExit> {
    if (slot.worker === worker && !slot.busy) slot.worker = undefined
    const p = worker.stop(this.o.stopGraceMs)
    this.track(p)
    return p
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch(() => {}).finally(() => this.background.delete(q))
    this.background.add(q)
  }

  private async runOnSlot(slot: Slot, job: Job): Promise<void> {
    const project = this.projects.get(job.group.projectId)!
    try {
      let worker = slot.worker
      if (!worker || worker.retiring || worker.hasExited || worker.workerHash !== job.group.workerHash) {
        if (worker) {
          slot.worker = undefined
          await worker.stop(this.o.stopGraceMs)
        }
        if (this.interrupted) return
        let cluster: ClusterConnectionInfo | undefined
        try {
          cluster = await this.o.clusters.infoFor(project)
        } catch (e: any) {
          this.projectFailedToStart(project, e)
          return
        }
        if (this.interrupted) return
        worker = this.createWorker(slot, job, cluster)
        slot.worker = worker
        try {
          await worker.start(this.o.env)
        } catch (e: any) {
          slot.worker = undefined
          if (this.interrupted) return
          // Not a test's fault but the worker's: every test of the group fails with the reason (retries apply).
          const error: TestError = {
            message: `Error: ${e?.message ?? e}${this.lastStderr(worker)}`,
          }
          for (const test of job.tests) this.reportSynthetic(test, worker, 'failed', [error])
          this.requeueAfter(job, job.tests, [])
          return
        }
      }
      if (this.interrupted) return
      await this.runJob(slot, worker, job)
    } finally {
      slot.busy = false
      this.jobFinished(project)
      this.notify()
    }
  }

  private readonly stderrTail = new WeakMap<WorkerHost, string>()

  private lastStderr(worker: WorkerHost): string {
    const tail = this.stderrTail.get(worker)
    return tail ? `\nworker stderr:\n${tail}` : ''
  }

  private createWorker(slot: Slot, job: Job, cluster: ClusterConnectionInfo | undefined): WorkerHost {
    const worker = new WorkerHost({
      workerIndex: this.nextWorkerIndex++,
      parallelIndex: slot.index,
      projectId: job.group.projectId,
      workerHash: job.group.workerHash,
      repeatEachIndex: job.group.repeatEachIndex,
      config: this.o.serializedConfig,
      ...(cluster ? { cluster } : {}),
    })
    this.allWorkers.add(worker)
    worker.on('stdout', chunk => this.o.reporter.onStdOut(chunk))
    worker.on('stderr', chunk => {
      const prev = this.stderrTail.get(worker) ?? ''
      this.stderrTail.set(worker, (prev + chunk.toString()).slice(-4000))
      this.o.reporter.onStdErr(chunk)
    })
    const owner = `worker ${worker.params.workerIndex}`
    worker.on('message', msg => {
      if (msg.type === 'sync' || msg.type === 'syncCancel') {
        serveWorker(this.sync, owner, msg, reply => worker.send(reply))
        return
      }
      // Output between jobs (worker fixtures setting up or tearing down at stop) belongs to no test; during a
      // job, runJob's handler reports it.
      if ((msg.type === 'stdout' || msg.type === 'stderr') && !this.inJob.has(worker)) {
        const chunk = msg.binary ? Buffer.from(msg.text, 'base64') : msg.text
        if (msg.type === 'stdout') this.o.reporter.onStdOut(chunk)
        else this.o.reporter.onStdErr(chunk)
      }
      if (msg.type === 'teardownErrors') {
        for (const error of msg.errors) {
          this.o.failures.onGlobalError()
          this.o.reporter.onError(error)
        }
      }
    })
    worker.on('exit', exit => {
      this.allWorkers.delete(worker)
      // What it waited for at barriers fails for the other parties, naming it, instead of hanging.
      this.sync.dropOwner(owner, `worker process ${worker.params.workerIndex} exited (${describeExit(exit)})`)
    })
    return worker
  }

  /** A result for a test that the worker never reported (crash, failed start): begin + end at once. */
  private reportSynthetic(test: TestCase, worker: WorkerHost, status: TestStatus, errors: TestError[]): void {
    const result = newResult(test.results.length, worker.params.workerIndex, worker.params.parallelIndex, new Date())
    test.results.push(result)
    this.o.reporter.onTestBegin(test, result)
    result.duration = 0
    result.status = status
    result.errors = errors
    result.error = errors[0]
    this.o.reporter.onTestEnd(test, result)
    this.afterTestEnd(test, result)
  }

  private afterTestEnd(test: TestCase, result: TestResult): void {
    this.o.failures.onTestEnd(test, result)
    if (this.o.failures.reachedMaxFailures()) this.interrupt()
  }

  private runJob(slot: Slot, worker: WorkerHost, job: Job): Promise<void> {
    const byId = new Map(job.tests.map(t => [t.id, t]))
    const notEnded = new Set(job.tests)
    const running = new Map<string, Running>()
    const failedInJob: TestCase[] = []
    const reporter = this.o.reporter

    this.inJob.add(worker)
    return new Promise<void>(resolve => {
      const finish = () => {
        this.inJob.delete(worker)
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
        this.afterTestEnd(test, result)
      }

      const onMessage = (msg: WorkerToMain) => {
        switch (msg.type) {
          case 'testBegin': {
            const test = byId.get(msg.testId)
            if (!test) return
            const result = newResult(
              test.results.length,
              worker.params.workerIndex,
              worker.params.parallelIndex,
              new Date(msg.startWallTime),
            )
            test.results.push(result)
            running.set(test.id, { test, result, steps: new Map() })
            reporter.onTestBegin(test, result)
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
                const result = newResult(
                  test.results.length,
                  worker.params.workerIndex,
                  worker.params.parallelIndex,
                  new Date(),
                )
                test.results.push(result)
                reporter.onTestBegin(test, result)
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
                status: this.interrupted ? 'interrupted' : 'failed',
                errors: this.interrupted
                  ? []
                  : [{ message: 'Error: the worker finished the group without ending this test' }],
                expectedStatus: r.test.expectedStatus,
                annotations: r.result.annotations,
                timeout: r.test.timeout,
              })
            const notRun = job.tests.filter(t => notEnded.has(t) || (remainingIds.has(t.id) && !t.results.length))
            if (msg.fatalErrors.length > 0) {
              if (notRun.length > 0 && !this.interrupted) {
                // The worker could not run them (e.g. a worker fixture failed to set up): they fail with its reason.
                for (const test of notRun) {
                  this.reportSynthetic(test, worker, 'failed', msg.fatalErrors)
                  failedInJob.push(test)
                }
              } else {
                for (const error of msg.fatalErrors) {
                  this.o.failures.onGlobalError()
                  reporter.onError(error)
                }
              }
            }
            const replace =
              msg.unusable || (failedInJob.length > 0 && !this.o.config.reuseWorkerAfterFailure) || this.interrupted
            if (replace) this.stopWorker(slot, worker)
            this.requeueAfter(job, failedInJob, msg.fatalErrors.length > 0 ? [] : notRun, worker)
            finish()
            return
          }
        }
      }

      const onExit = (exit: WorkerExit) => {
        const why = `worker process exited unexpectedly (${describeExit(exit)})`
        for (const r of [...running.values()]) {
          const status: TestStatus = this.interrupted ? 'interrupted' : 'failed'
          const title = r.test.titlePath().filter(Boolean).join(' › ')
          endTest(r.test, r, {
            duration: Date.now() - r.result.startTime.getTime(),
            status,
            errors:
              status === 'failed'
                ? [{ message: `Error: ${why} while running "${title}"${this.lastStderr(worker)}` }]
                : [],
            expectedStatus: r.test.expectedStatus,
            annotations: r.result.annotations,
            timeout: r.test.timeout,
          })
        }
        let notRun = job.tests.filter(t => notEnded.has(t))
        if (!this.interrupted && failedInJob.length === 0 && notRun.length > 0) {
          // Died between tests (e.g. in worker fixture setup): blame the next test so the run always progresses.
          const [first, ...rest] = notRun
          this.reportSynthetic(first, worker, 'failed', [
            {
              message: `Error: ${why} before "${first.titlePath().filter(Boolean).join(' › ')}" could finish${this.lastStderr(worker)}`,
            },
          ])
          failedInJob.push(first)
          notRun = rest
        }
        if (slot.worker === worker) slot.worker = undefined
        this.requeueAfter(job, failedInJob, notRun, worker)
        finish()
      }

      worker.on('message', onMessage)
      worker.on('exit', onExit)
      if (worker.hasExited) return onExit({ code: null, signal: null, expected: false })
      worker.run({
        type: 'run',
        file: job.group.file,
        entries: job.tests.map(t => ({ testId: t.id, retry: t.results.length })),
      })
    })
  }

  /**
   * Re-queues what still has to run: tests of the job that never ran, and failed tests with retries left. A
   * failed test inside a serial describe brings its whole serial group back.
   */
  private requeueAfter(job: Job, failed: TestCase[], notRun: TestCase[], worker?: WorkerHost): void {
    if (this.interrupted) return
    const again = new Set<TestCase>()
    const failedSerial = new Map<object, boolean>()
    for (const t of failed) {
      const s = outermostSerialSuite(t)
      if (s) failedSerial.set(s, (failedSerial.get(s) ?? false) || t.results.length <= t.retries)
      else if (t.results.length <= t.retries) again.add(t)
    }
    for (const t of job.tests) {
      const s = outermostSerialSuite(t)
      const retrySerial = s ? failedSerial.get(s) : undefined
      if (retrySerial !== undefined) {
        // A failed serial group: its tests that did not get to run are skipped in this attempt (never run alone
        // elsewhere), and the whole group runs again while retries last.
        if (notRun.includes(t) && worker) this.reportSynthetic(t, worker, 'skipped', [])
        if (retrySerial && t.results.length <= t.retries) again.add(t)
      } else if (notRun.includes(t)) again.add(t)
    }
    const tests = job.tests.filter(t => again.has(t))
    if (tests.length > 0) this.enqueue({ group: job.group, tests }, true)
  }

  private jobFinished(project: FullProject): void {
    const left = (this.pendingByProject.get(project.id) ?? 1) - 1
    this.pendingByProject.set(project.id, left)
    if (left > 0) return
    // The project's last group is done: its workers will not be reused; stop them, then its cluster.
    const workers = this.slots.filter(s => !s.busy && s.worker?.params.projectId === project.id)
    const stops = workers.map(s => this.stopWorker(s, s.worker!))
    this.track(Promise.all(stops).then(() => this.o.clusters.stopFor(project)))
  }

  private projectFailedToStart(project: FullProject, e: any): void {
    if (!this.failedProjects.has(project.id)) {
      this.failedProjects.add(project.id)
      this.o.failures.onGlobalError()
      this.o.reporter.onError({
        message: `Error: could not start the cluster of project "${project.name || project.id}": ${e?.message ?? e}`,
        stack: e?.stack,
      })
    }
    // Its queued groups cannot run either.
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].group.projectId === project.id) {
        this.queue.splice(i, 1)
        this.jobFinished(project)
      }
    }
  }

  /** Was the process killed (second Ctrl-C)? */
  get wasKilled(): boolean {
    return this.killed
  }
}
