// exec: runs a command to completion in its own process group. On timeout or cancel the whole tree (group
// and descendants) is SIGKILLed; when the command ends, anything it left running in its group is killed too
// (background work belongs in `spawn`).
import { spawn as spawnChild } from 'node:child_process'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { ExecResult } from '../../src/protocol/exec.ts'
import { killTree, startTimeOf } from '../../src/util/proc.ts'
import { implement } from '../service.ts'
import { syncEnv } from './sync.ts'

const DEFAULT_TIMEOUT_MS = 10 * 60_000
const DEFAULT_MAX_BUFFER = 16 * 1024 * 1024

export const execService = implement('exec', () => session => {
  const running = new Map<string, () => void>()
  let nextId = 1

  return {
    async run(req) {
      const id = req.id ?? `exec-${nextId++}`
      if (running.has(id)) {
        throw new VtError(ErrorNames.badRequest, `an exec with id ${id} is already running`, { code: 'BAD_REQUEST' })
      }
      const argv = req.argv ?? ['/bin/sh', '-c', req.command as string]
      // vt-sync on PATH and its socket, unless the caller asked for exactly its own environment.
      const env = req.clearEnv ? { ...req.env } : { ...process.env, ...(await syncEnv(session.id)), ...req.env }
      const started = Date.now()
      const child = spawnChild(argv[0], argv.slice(1), {
        cwd: req.cwd,
        env,
        detached: true, // own session and process group: the tree can be killed as one
        stdio: [req.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      })
      const spawnError = new Promise<never>((_, reject) => child.once('error', reject))
      spawnError.catch(() => {})
      if (child.pid === undefined) {
        const e = await spawnError.catch(err => err as NodeJS.ErrnoException)
        throw new VtError(ErrorNames.badRequest, `cannot run ${argv[0]}: ${e.message}`, { code: e.code ?? 'SPAWN' })
      }
      const pid = child.pid
      const startTime = startTimeOf(pid)
      const tracked = session.track({ kind: 'process', pid, startTime, group: true, label: `exec ${argv[0]}` })

      const maxBuffer = req.maxBuffer ?? DEFAULT_MAX_BUFFER
      const out: Buffer[] = []
      const err: Buffer[] = []
      let outBytes = 0
      let errBytes = 0
      let truncated = false
      const collect = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
        if (req.stream) {
          session.emit('output', { id, stream, data: chunk })
          // A chatty command must not fill the agent's memory: stop reading it until the link drains.
          if (session.congested()) throttle(child.stdout, child.stderr)
        }
        const size = stream === 'stdout' ? outBytes : errBytes
        const room = maxBuffer - size
        if (room <= 0) {
          truncated = true
          return
        }
        const part = chunk.length > room ? chunk.subarray(0, room) : chunk
        if (part.length < chunk.length) truncated = true
        if (stream === 'stdout') {
          out.push(part)
          outBytes += part.length
        } else {
          err.push(part)
          errBytes += part.length
        }
      }
      child.stdout?.on('data', collect('stdout'))
      child.stderr?.on('data', collect('stderr'))
      if (child.stdin) {
        child.stdin.on('error', () => {}) // the command may exit without reading its input
        child.stdin.end(typeof req.stdin === 'string' ? req.stdin : Buffer.from(req.stdin as Uint8Array))
      }

      let timedOut = false
      let canceled = false
      const kill = () => killTree(pid, startTime, true)
      running.set(id, () => {
        canceled = true
        kill()
      })
      const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              timedOut = true
              kill()
            }, timeoutMs)
          : undefined
      const onAbort = () => kill()
      session.signal.addEventListener('abort', onAbort)
      try {
        const [code, signal] = await Promise.race([
          new Promise<[number | null, NodeJS.Signals | null]>(resolve =>
            child.once('close', (c, s) => resolve([c, s])),
          ),
          spawnError,
        ])
        const result: ExecResult = {
          exitCode: code,
          signal,
          stdout: Buffer.concat(out),
          stderr: Buffer.concat(err),
          truncated,
          timedOut,
          canceled,
          durationMs: Date.now() - started,
          pid,
        }
        session.log.info('exec', {
          session: session.id,
          pid,
          cmd: argv.join(' ').slice(0, 200),
          exit: code ?? undefined,
          signal: signal ?? undefined,
          timedOut: timedOut || undefined,
          canceled: canceled || undefined,
          ms: result.durationMs,
        })
        return result
      } finally {
        clearTimeout(timer)
        session.signal.removeEventListener('abort', onAbort)
        running.delete(id)
        if (groupExists(pid)) kill() // leftovers in the group
        // Not awaited: a stale record is harmless (the pid's start time no longer matches), and the caller
        // should not wait for the bookkeeping write.
        void tracked.then(id => session.untrack(id)).catch(() => {})
      }
    },

    async cancel(id) {
      const cancel = running.get(id)
      if (!cancel) return false
      cancel()
      return true
    },
  }
})

/** One syscall: does any process still belong to process group `pgid`? */
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function throttle(...streams: (NodeJS.ReadableStream | null)[]): void {
  const live = streams.filter((s): s is NodeJS.ReadableStream => s !== null && !s.isPaused())
  for (const s of live) s.pause()
  const timer = setInterval(() => {
    for (const s of live) s.resume()
    clearInterval(timer)
  }, 50)
}
