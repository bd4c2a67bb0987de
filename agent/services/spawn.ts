// spawn: long-running processes in their own process group, output written to log files in the session's
// directory (and streamed as events on request). They are killed with the session unless they exit first.
import { spawn as spawnChild } from 'node:child_process'
import { closeSync, createWriteStream, openSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { ProcessInfo } from '../../src/protocol/spawn.ts'
import { killTree, startTimeOf } from '../../src/util/proc.ts'
import { implement } from '../service.ts'
import { syncEnv } from './sync.ts'

interface Entry {
  info: ProcessInfo
  startTime?: number
  exited: Promise<void>
}

export const spawnService = implement('spawn', () => session => {
  const processes = new Map<string, Entry>()
  let next = 1

  const get = (id: string) => {
    const entry = processes.get(id)
    if (!entry) throw new VtError(ErrorNames.notFound, `no process ${id} in this session`, { code: 'ENOENT' })
    return entry
  }

  return {
    async start(req) {
      const id = `p${next++}`
      const argv = req.argv ?? ['/bin/sh', '-c', req.command as string]
      const stdoutLog = join(session.dir, `${id}.stdout.log`)
      const stderrLog = join(session.dir, `${id}.stderr.log`)
      // vt-sync on PATH and its socket, unless the caller asked for exactly its own environment.
      const env = req.clearEnv ? { ...req.env } : { ...process.env, ...(await syncEnv(session.id)), ...req.env }
      let stdio: ('ignore' | 'pipe' | number)[]
      const fds: number[] = []
      if (req.stream) stdio = ['ignore', 'pipe', 'pipe']
      else {
        fds.push(openSync(stdoutLog, 'a'), openSync(stderrLog, 'a'))
        stdio = ['ignore', fds[0], fds[1]]
      }
      const child = spawnChild(argv[0], argv.slice(1), { cwd: req.cwd, env, detached: true, stdio })
      for (const fd of fds) closeSync(fd)
      if (child.pid === undefined) {
        const e = await new Promise<NodeJS.ErrnoException>(resolve => child.once('error', resolve))
        throw new VtError(ErrorNames.badRequest, `cannot run ${argv[0]}: ${e.message}`, { code: e.code ?? 'SPAWN' })
      }
      child.on('error', () => {})
      const pid = child.pid
      const startTime = startTimeOf(pid)
      await session.track({ kind: 'process', pid, startTime, group: true, label: `spawn ${req.name ?? argv[0]}` })
      if (req.stream) {
        for (const stream of ['stdout', 'stderr'] as const) {
          const file = createWriteStream(stream === 'stdout' ? stdoutLog : stderrLog, { flags: 'a' })
          child[stream]?.on('data', (data: Buffer) => {
            file.write(data)
            session.emit('output', { id, stream, data })
          })
          child[stream]?.on('end', () => file.end())
        }
      }
      const info: ProcessInfo = {
        id,
        name: req.name ?? argv[0],
        pid,
        running: true,
        exitCode: null,
        signal: null,
        stdoutLog,
        stderrLog,
        startedAt: Date.now(),
      }
      session.log.info('spawn', { session: session.id, id, pid, cmd: argv.join(' ').slice(0, 200) })
      const exited = new Promise<void>(resolve =>
        child.once('exit', (code, signal) => {
          session.log.info('spawn exited', {
            session: session.id,
            id,
            pid,
            exit: code ?? undefined,
            signal: signal ?? undefined,
          })
          info.running = false
          info.exitCode = code
          info.signal = signal
          session.emit('exit', { id, exitCode: code, signal })
          resolve()
        }),
      )
      processes.set(id, { info, startTime, exited })
      return { ...info }
    },

    list: () => [...processes.values()].map(e => ({ ...e.info })),

    async kill(id, signal) {
      const entry = get(id)
      if (!entry.info.running) return false
      killTree(entry.info.pid, entry.startTime, true, (signal ?? 'SIGTERM') as NodeJS.Signals)
      return true
    },

    async wait(id, timeoutMs) {
      const entry = get(id)
      if (timeoutMs === undefined) await entry.exited
      else {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([entry.exited, new Promise(r => (timer = setTimeout(r, timeoutMs)))])
        clearTimeout(timer)
      }
      return entry.info.running ? null : { ...entry.info }
    },

    async logs(id, options) {
      const entry = get(id)
      const file = options?.stream === 'stderr' ? entry.info.stderrLog : entry.info.stdoutLog
      const offset = options?.offset ?? 0
      const max = options?.maxBytes ?? 1024 * 1024
      const handle = await open(file, 'r').catch(() => undefined)
      if (!handle) return { data: new Uint8Array(), offset, size: 0 }
      try {
        const size = (await handle.stat()).size
        const length = Math.max(0, Math.min(max, size - offset))
        const buf = Buffer.alloc(length)
        if (length) await handle.read(buf, 0, length, offset)
        return { data: buf, offset, size }
      } finally {
        await handle.close()
      }
    },
  }
})
