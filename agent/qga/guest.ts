// exec and files through qemu-guest-agent, with the results the tiny guest's channel gives: stdout and
// stderr apart, the exit code (128 + n for a signal, as a shell reports it), and on timeout the command's
// process tree killed. The command runs as `/bin/sh -c` in /root (else /), with the caller's variables added
// to the agent's environment. Files move in chunks through guest-file-open/read/write/close.
import type { GuestResult } from '../vm/guest.ts'
import { GuestError, GuestTimeoutError, guestScript } from '../vm/guest.ts'
import { type QgaClient, QgaError } from './client.ts'

interface ExecStatus {
  exited: boolean
  exitcode?: number
  signal?: number
  'out-data'?: string
  'err-data'?: string
}

/** Bytes per guest-file-read/write: a request stays well under the agent's message limits. */
const CHUNK = 256 * 1024

/**
 * Stops a process and its descendants (children first, all stopped before any is killed, so none escapes by
 * forking meanwhile). POSIX sh and /proc only: it must work in any guest that runs the agent.
 */
const KILL_TREE =
  'kt() { kill -STOP "$1" 2>/dev/null; for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do kt "$c"; done; ' +
  'kill -KILL "$1" 2>/dev/null; }; kt "$1"'

function short(cmd: string): string {
  const one = cmd.replace(/\s+/g, ' ').trim()
  return one.length > 120 ? `${one.slice(0, 120)}…` : one
}

export class QgaGuest {
  private queue: Promise<unknown> = Promise.resolve()

  constructor(
    readonly client: QgaClient,
    private readonly label: string,
  ) {}

  /** Runs a command in the guest; calls are queued like the tiny guest's. */
  exec(command: string, opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<GuestResult> {
    const script = `: "\${HOME:=/root}"; export HOME; cd /root 2>/dev/null || cd /\n${guestScript(command, opts.env)}`
    const run = () => this.run(command, script, opts.timeoutMs ?? 60_000)
    const p = this.queue.then(run, run)
    this.queue = p.catch(() => {})
    return p
  }

  private async run(command: string, script: string, timeoutMs: number): Promise<GuestResult> {
    const started = performance.now()
    const deadline = Date.now() + timeoutMs
    const left = () => Math.max(1, deadline - Date.now())
    let pid: number
    try {
      const r = await this.client.execute<{ pid: number }>(
        'guest-exec',
        { path: '/bin/sh', arg: ['-c', script], 'capture-output': true },
        { timeoutMs: left() },
      )
      pid = r.pid
    } catch (err) {
      throw this.wrap(err, command, timeoutMs)
    }
    let wait = 5
    for (;;) {
      let st: ExecStatus
      try {
        // Its own allowance: a poll that starts just before the deadline must not turn the timeout into "no answer".
        st = await this.client.execute<ExecStatus>('guest-exec-status', { pid }, { timeoutMs: left() + 10_000 })
      } catch (err) {
        if (err instanceof QgaError && err.code === 'timeout') await this.kill(pid)
        throw this.wrap(err, command, timeoutMs)
      }
      if (st.exited) {
        return {
          stdout: Buffer.from(st['out-data'] ?? '', 'base64'),
          stderr: Buffer.from(st['err-data'] ?? '', 'base64'),
          exitCode: st.exitcode ?? (st.signal !== undefined ? 128 + st.signal : -1),
          durationMs: performance.now() - started,
        }
      }
      if (Date.now() >= deadline) {
        await this.kill(pid)
        throw new GuestTimeoutError(
          `${this.label}: \`${short(command)}\` did not finish within ${timeoutMs} ms (its processes were killed)`,
        )
      }
      await new Promise(r => setTimeout(r, Math.min(wait, left())))
      wait = Math.min(wait * 2, 100)
    }
  }

  /** Kills the tree of `pid` and collects its status so the agent forgets it (best effort). */
  private async kill(pid: number): Promise<void> {
    try {
      await this.client.execute(
        'guest-exec',
        { path: '/bin/sh', arg: ['-c', KILL_TREE, 'vt-kill', String(pid)] },
        { timeoutMs: 5000 },
      )
      for (let i = 0; i < 20; i++) {
        const st = await this.client.execute<ExecStatus>('guest-exec-status', { pid }, { timeoutMs: 5000 })
        if (st.exited) return
        await new Promise(r => setTimeout(r, 50))
      }
    } catch {}
  }

  private wrap(err: unknown, command: string, timeoutMs: number): Error {
    if (err instanceof QgaError && err.code === 'timeout') {
      return new GuestTimeoutError(
        `${this.label}: \`${short(command)}\` did not finish within ${timeoutMs} ms (the guest agent stopped answering)`,
      )
    }
    return new GuestError(`${this.label}: cannot run \`${short(command)}\`: ${(err as Error).message}`)
  }

  /** The whole file at `path` (refused beyond `maxBytes`). */
  async readFile(path: string, opts: { maxBytes?: number; timeoutMs?: number } = {}): Promise<Buffer> {
    const max = opts.maxBytes ?? 64 * 1024 * 1024
    const t = { timeoutMs: opts.timeoutMs ?? 60_000 }
    const handle = await this.open(path, 'r', t.timeoutMs)
    const parts: Buffer[] = []
    let total = 0
    try {
      for (;;) {
        const r = await this.client.execute<{ count: number; 'buf-b64': string; eof: boolean }>(
          'guest-file-read',
          { handle, count: CHUNK },
          t,
        )
        const b = Buffer.from(r['buf-b64'], 'base64')
        total += b.length
        if (total > max) throw new GuestError(`${this.label}: ${path} has more than ${max} bytes`)
        parts.push(b)
        if (r.eof || r.count === 0) return Buffer.concat(parts, total)
      }
    } finally {
      await this.client.execute('guest-file-close', { handle }, t).catch(() => {})
    }
  }

  /** Writes `data` to `path` (created or truncated), then sets `mode` when given. */
  async writeFile(path: string, data: Uint8Array, opts: { mode?: number; timeoutMs?: number } = {}): Promise<void> {
    const t = { timeoutMs: opts.timeoutMs ?? 60_000 }
    const handle = await this.open(path, 'w', t.timeoutMs)
    try {
      for (let at = 0; at < data.length; at += CHUNK) {
        const part = Buffer.from(data.subarray(at, at + CHUNK))
        await this.client.execute('guest-file-write', { handle, 'buf-b64': part.toString('base64') }, t)
      }
    } finally {
      await this.client.execute('guest-file-close', { handle }, t).catch(() => {})
    }
    if (opts.mode !== undefined) {
      const r = await this.exec(`chmod ${opts.mode.toString(8)} '${path.replace(/'/g, `'\\''`)}'`, t)
      if (r.exitCode !== 0) throw new GuestError(`${this.label}: chmod ${path}: ${r.stderr.toString().trim()}`)
    }
  }

  private async open(path: string, mode: 'r' | 'w', timeoutMs: number): Promise<number> {
    try {
      return await this.client.execute<number>('guest-file-open', { path, mode }, { timeoutMs })
    } catch (err) {
      const what = mode === 'r' ? 'read' : 'write'
      throw new GuestError(`${this.label}: cannot ${what} ${path} in the guest: ${(err as Error).message}`)
    }
  }
}
