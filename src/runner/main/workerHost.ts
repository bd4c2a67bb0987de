// One worker process as the main process sees it: fork with stdio pipes and an IPC channel, send init, wait for
// 'ready', pass messages, stop gracefully ('stop', then SIGKILL after a grace period) or kill.
import { type ChildProcess, fork } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { redactBuffer } from '../../util/secrets.ts'
import type { InitMessage, MainToWorker, RunMessage, WorkerToMain } from '../ipc.ts'
import { redactMessage } from './redact.ts'

const workerDir = fileURLToPath(new URL('../worker/', import.meta.url))

/** The worker entry: a .js file that registers tsx itself, or process.ts run with tsx's loader. */
function workerEntry(): { file: string; execArgv: string[] } {
  const js = `${workerDir}process.js`
  if (existsSync(js)) return { file: js, execArgv: [] }
  const tsx = import.meta.resolve('tsx')
  return { file: `${workerDir}process.ts`, execArgv: ['--import', tsx] }
}

/** What a worker is started with: the init message it receives. */
export type WorkerParams = Omit<InitMessage, 'type'>

export interface WorkerExit {
  code: number | null
  signal: NodeJS.Signals | null
  /** True when the exit followed our 'stop' or kill. */
  expected: boolean
}

export class WorkerHost extends EventEmitter<{
  message: [WorkerToMain]
  stdout: [Buffer]
  stderr: [Buffer]
  exit: [WorkerExit]
}> {
  readonly params: WorkerParams
  private child?: ChildProcess
  private exitInfo?: WorkerExit
  private exited: Promise<WorkerExit>
  private resolveExit!: (e: WorkerExit) => void
  private stopping = false
  /** The worker was stopped or asked to be replaced: never give it more work. */
  retiring = false

  constructor(params: WorkerParams) {
    super()
    this.params = params
    this.exited = new Promise(resolve => (this.resolveExit = resolve))
  }

  get workerHash(): string {
    return this.params.workerHash
  }
  get pid(): number | undefined {
    return this.child?.pid
  }
  get hasExited(): boolean {
    return this.exitInfo !== undefined
  }

  /** Forks the process and resolves once it reported 'ready'; rejects (with the exit) if it dies first. */
  start(env: NodeJS.ProcessEnv): Promise<void> {
    const entry = workerEntry()
    const child = fork(entry.file, [], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Debugger flags would make every worker fight for the main process's inspector port.
      execArgv: [...entry.execArgv, ...process.execArgv.filter(a => !/^--(input-type|inspect)/.test(a))],
      env: {
        ...env,
        VT_WORKER_INDEX: String(this.params.workerIndex),
        VT_PARALLEL_INDEX: String(this.params.parallelIndex),
      },
      // Own process group: a terminal Ctrl-C reaches only the main process, which then stops workers in order.
      detached: true,
      serialization: 'json',
    })
    this.child = child
    // Known secrets leave nothing the worker says: reporters only ever see redacted output.
    child.stdout!.on('data', (chunk: Buffer) => this.emit('stdout', redactBuffer(chunk)))
    child.stderr!.on('data', (chunk: Buffer) => this.emit('stderr', redactBuffer(chunk)))
    child.on('message', (msg: WorkerToMain) => this.emit('message', redactMessage(msg)))
    // A disconnected channel can emit EPIPE on send; the exit event reports the real story.
    child.on('error', () => {})
    child.on('exit', (code, signal) => {
      // Drain pipes before announcing the exit so the last output is attributed before the failure.
      const done = () => {
        this.exitInfo = { code, signal, expected: this.stopping }
        this.emit('exit', this.exitInfo)
        this.resolveExit(this.exitInfo)
      }
      let open = 0
      for (const s of [child.stdout, child.stderr]) {
        if (s && !s.readableEnded && !s.destroyed) {
          open++
          s.once('close', () => --open === 0 && done())
        }
      }
      if (open === 0) done()
    })
    const init: InitMessage = {
      type: 'init',
      workerIndex: this.params.workerIndex,
      parallelIndex: this.params.parallelIndex,
      projectId: this.params.projectId,
      workerHash: this.params.workerHash,
      repeatEachIndex: this.params.repeatEachIndex,
      config: this.params.config,
      ...(this.params.cluster ? { cluster: this.params.cluster } : {}),
    }
    return new Promise<void>((resolve, reject) => {
      const onMessage = (msg: WorkerToMain) => {
        if (msg.type !== 'ready') return
        cleanup()
        resolve()
      }
      const onExit = (e: WorkerExit) => {
        cleanup()
        reject(Object.assign(new Error(`worker process exited before it was ready (${describeExit(e)})`), { exit: e }))
      }
      const cleanup = () => {
        this.off('message', onMessage)
        this.off('exit', onExit)
      }
      this.on('message', onMessage)
      this.on('exit', onExit)
      this.send(init)
    })
  }

  send(msg: MainToWorker): void {
    if (!this.child?.connected) return
    try {
      this.child.send(msg)
    } catch {
      // The channel closed under us: the exit handler reports it.
    }
  }

  run(msg: RunMessage): void {
    this.send(msg)
  }

  /**
   * Asks the worker to finish (tear down worker fixtures and exit). After `graceMs` it is killed. Resolves when
   * the process is gone.
   */
  stop(graceMs = 30_000): Promise<WorkerExit> {
    this.retiring = true
    if (this.exitInfo) return Promise.resolve(this.exitInfo)
    if (!this.stopping) {
      this.stopping = true
      this.send({ type: 'stop' })
      if (!this.child?.connected) this.kill()
      const timer = setTimeout(() => this.kill(), graceMs)
      timer.unref()
      void this.exited.then(() => clearTimeout(timer))
    }
    return this.exited
  }

  /** SIGKILL to the worker's whole process group (it is detached), then to the worker itself. */
  kill(): void {
    this.retiring = true
    this.stopping = true
    if (!this.child || this.exitInfo) return
    const pid = this.child.pid
    if (pid) {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {}
    }
    try {
      this.child.kill('SIGKILL')
    } catch {}
  }

  waitForExit(): Promise<WorkerExit> {
    return this.exited
  }
}

export function describeExit(e: { code: number | null; signal: NodeJS.Signals | null }): string {
  return e.signal ? `signal ${e.signal}` : `code ${e.code}`
}
