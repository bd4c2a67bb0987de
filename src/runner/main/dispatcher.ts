// The dispatcher: a pool of worker slots running test groups. A free slot takes the first queued group whose
// worker hash matches its idle worker (reuse), else stops that worker and forks a fresh one. Results stream
// back as IPC messages and become TestResults for the reporters. Failed tests are re-queued for retry (a serial
// describe as a whole); a worker that dies mid-test fails that test and its group's other tests go on elsewhere.
import type { FullConfig, FullProject } from '../../config/types.ts'
import { SyncServer } from '../../sync/server.ts'
import { serveWorker } from '../../sync/transport.ts'
import type { SerializedConfig } from '../ipc.ts'
import type { TestCase } from '../model.ts'
import { newTestResult, type TestError, type TestResult, type TestStatus } from '../results.ts'
import type { DebugPauses } from './debugPauses.ts'
import type { FailureTracker } from './failureTracker.ts'
import { beginResult, runJobOnWorker } from './jobRun.ts'
import type { Multiplexer } from './reporters.ts'
import type { ResourceProvider, WorkerResources } from './resources.ts'
import { outermostSerialSuite, type TestGroup } from './testGroups.ts'
import { describeExit, type WorkerExit, WorkerHost } from './workerHost.ts'

export { FailureTracker, isUnexpected } from './failureTracker.ts'

interface Job {
  group: TestGroup
  tests: TestCase[]
}

interface Slot {
  index: number
  busy: boolean
  worker?: WorkerHost
}

export interface DispatcherOptions {
  config: FullConfig
  serializedConfig: SerializedConfig
  reporter: Multiplexer
  failures: FailureTracker
  /** Per-project resources (a cluster, ...) set up before the project's first worker starts. */
  resources: ResourceProvider
  env: NodeJS.ProcessEnv
  /** How long a worker may take to tear down after 'stop' before it is killed. */
  stopGraceMs?: number
  /** Barriers and keys of the run (one server for every worker). */
  sync?: SyncServer
  /** `vt test --debug` / `--keep-on-failure`: tests that pause with their cluster alive. */
  debug?: DebugPauses
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
        let resources: WorkerResources
        try {
          resources = await this.o.resources.setUp(project)
        } catch (e: any) {
          this.projectFailedToStart(project, e)
          return
        }
        if (this.interrupted) return
        worker = this.createWorker(slot, job, resources)
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

  private createWorker(slot: Slot, job: Job, resources: WorkerResources): WorkerHost {
    const worker = new WorkerHost({
      workerIndex: this.nextWorkerIndex++,
      parallelIndex: slot.index,
      projectId: job.group.projectId,
      workerHash: job.group.workerHash,
      repeatEachIndex: job.group.repeatEachIndex,
      config: this.o.serializedConfig,
      ...resources,
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
      if (msg.type === 'debugPause') {
        if (this.o.debug) this.o.debug.onPause(worker, msg)
        else worker.send({ type: 'debugResume' })
        return
      }
      if (msg.type === 'cluster') {
        const project = this.o.config.projects.find(p => p.id === worker.params.projectId)
        const restart = project && this.o.resources.restartAgent?.(project, msg.host)
        void Promise.resolve(restart ?? Promise.reject(new Error('no cluster to restart an agent of'))).then(
          () => worker.send({ type: 'clusterReply', id: msg.id }),
          (e: unknown) => worker.send({ type: 'clusterReply', id: msg.id, error: (e as Error)?.message ?? String(e) }),
        )
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
      this.o.debug?.workerExited(worker)
      // What it waited for at barriers fails for the other parties, naming it, instead of hanging.
      this.sync.dropOwner(owner, `worker process ${worker.params.workerIndex} exited (${describeExit(exit)})`)
    })
    return worker
  }

  /** A result for a test that the worker never reported (crash, failed start): begin + end at once. */
  private reportSynthetic(test: TestCase, worker: WorkerHost, status: TestStatus, errors: TestError[]): void {
    const result = beginResult(test, worker, this.o.reporter, new Date())
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
    this.inJob.add(worker)
    return runJobOnWorker(worker, job.tests, job.group.file, {
      reporter: this.o.reporter,
      interrupted: () => this.interrupted,
      reuseWorkerAfterFailure: this.o.config.reuseWorkerAfterFailure,
      lastStderr: () => this.lastStderr(worker),
      afterTestEnd: (test, result) => this.afterTestEnd(test, result),
      reportSynthetic: (test, status, errors) => this.reportSynthetic(test, worker, status, errors),
      onGlobalError: error => {
        this.o.failures.onGlobalError()
        this.o.reporter.onError(error)
      },
      replaceWorker: () => this.stopWorker(slot, worker),
      forgetWorker: () => {
        if (slot.worker === worker) slot.worker = undefined
      },
      requeue: (failed, notRun) => this.requeueAfter(job, failed, notRun, worker),
    }).finally(() => this.inJob.delete(worker))
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
    this.track(Promise.all(stops).then(() => this.o.resources.tearDown(project)))
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
