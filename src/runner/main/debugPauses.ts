// The main process's half of `vt test --debug` / `--keep-on-failure`: a worker paused a test with its cluster
// alive (worker/debugPause.ts). One pause at a time: write the state file `vt console` reads (with the tokens,
// which only the main process sends nowhere), tell the user what to reach and how, wait for Enter, remove the
// file, let the worker go on. Ctrl-C (the run's own handler) ends every pause: the file goes at once, and the
// worker's 'stop' interrupts the paused test, whose fixtures are then torn down as after any interruption.
import path from 'node:path'
import { removeDebugState, selfIdentity, writeDebugState } from '../../debug/state.ts'
import { describeTargets } from '../../debug/targets.ts'
import type { DebugPauseMessage } from '../ipc.ts'
import type { WorkerHost } from './workerHost.ts'

export interface DebugPausesOptions {
  rootDir: string
  stdin: NodeJS.ReadableStream
  /** Where the instructions go: the terminal. */
  out: NodeJS.WritableStream
}

export class DebugPauses {
  private queue: Promise<void> = Promise.resolve()
  private interrupted = false
  private current?: { worker: WorkerHost; end: () => void }

  constructor(private readonly o: DebugPausesOptions) {}

  onPause(worker: WorkerHost, message: DebugPauseMessage): void {
    this.queue = this.queue
      .then(() => this.pause(worker, message))
      .catch(e => {
        this.o.out.write(`vt: the debug pause failed: ${(e as Error)?.message ?? e}\n`)
        worker.send({ type: 'debugResume' })
      })
  }

  /** Ctrl-C: no more pauses; the paused worker is being stopped by the dispatcher. */
  interrupt(): void {
    this.interrupted = true
    this.current?.end()
  }

  workerExited(worker: WorkerHost): void {
    if (this.current?.worker === worker) this.current.end()
  }

  private async pause(worker: WorkerHost, m: DebugPauseMessage): Promise<void> {
    if (this.interrupted || worker.hasExited) return worker.send({ type: 'debugResume' })
    const cluster = worker.params.cluster
    const where = `${path.relative(this.o.rootDir, m.location.file)}:${m.location.line}`
    const file = writeDebugState({
      version: 1,
      ...selfIdentity(),
      pausedAt: Date.now(),
      reason: m.reason === 'failure' ? 'a failure' : `test.debug() at ${where}`,
      test: { title: m.title, location: where },
      hosts: m.hosts.map(h => {
        const known = cluster?.hosts.find(c => c.name === h.name)
        return { ...h, token: known?.token ?? '', ...(cluster?.tls ? { tls: cluster.tls } : {}) }
      }),
    })
    try {
      const lines = [
        '',
        m.reason === 'failure'
          ? `vt: paused after a failure of ${m.title} (${where})${m.error ? `: ${m.error.split('\n')[0].slice(0, 200)}` : ''}`
          : `vt: paused at test.debug() at ${where} (${m.title})`,
        '  The cluster and its VMs stay up. From another terminal:',
        ...describeTargets(m),
        `  (state file ${file})`,
        '  Press Enter to go on; Ctrl-C stops the run and tears everything down.',
        '',
      ]
      this.o.out.write(`${lines.join('\n')}\n`)
      await this.waitForEnter(worker)
    } finally {
      removeDebugState(file)
    }
    if (!this.interrupted) this.o.out.write('vt: going on\n')
    worker.send({ type: 'debugResume' })
  }

  private waitForEnter(worker: WorkerHost): Promise<void> {
    const stdin = this.o.stdin
    return new Promise<void>(resolve => {
      const end = () => {
        stdin.off('data', onData)
        stdin.off('end', onEnd)
        stdin.pause()
        this.current = undefined
        resolve()
      }
      const onData = (data: Buffer | string) => {
        if (/[\r\n]/.test(data.toString())) end()
      }
      const onEnd = () =>
        this.o.out.write('vt: standard input is closed: Ctrl-C (or SIGINT to this process) ends the run\n')
      this.current = { worker, end }
      stdin.on('data', onData)
      stdin.on('end', onEnd)
      stdin.resume()
    })
  }
}
