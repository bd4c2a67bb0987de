// A shell on the host for `vt console --host`: node has no pseudo-terminal of its own, so script(1) from
// util-linux (Essential on Debian) makes one and runs the shell on it, in the agent's network namespace (an
// embedded host's). Bytes go through script's stdin and stdout. The window size is set on the pty's slave with
// stty -F, which sends SIGWINCH to the foreground program; the slave's path comes from `tty` run first inside.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { killTree, startTimeOf } from '../../src/util/proc.ts'
import type { ShellSink } from './vmShell.ts'

export interface HostShellOptions {
  /** The host's name, for the prompt. */
  host: string
  cwd: string
  /** A directory of the calling session for the tty's path file. */
  dir: string
  id: number
  cols: number
  rows: number
  term?: string
  sink: ShellSink
  /** Records the process for the session's reaper; returns the record id. */
  track(pid: number, startTime: number | undefined): Promise<string>
  untrack(id: string): void
}

// Runs inside the pty. Values come from the environment, never spliced into the script.
const INNER =
  'tty > "$VT_TTY_FILE"; stty rows "$VT_ROWS" cols "$VT_COLS" 2>/dev/null; ' +
  'if [ -x /bin/bash ]; then exec /bin/bash --norc --noprofile -i; else exec /bin/sh -i; fi'

export class HostShell {
  private done = false
  private readonly ttyFile: string

  private constructor(
    private readonly child: ChildProcess,
    private readonly startTime: number | undefined,
    private readonly options: HostShellOptions,
  ) {
    this.ttyFile = join(options.dir, `console-${options.id}.tty`)
  }

  static async start(options: HostShellOptions): Promise<HostShell> {
    const prompt = options.host.replace(/[^A-Za-z0-9._-]/g, '_')
    const ttyFile = join(options.dir, `console-${options.id}.tty`)
    const child = spawn('script', ['-qfe', '-c', INNER, '/dev/null'], {
      cwd: options.cwd,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        SHELL: '/bin/sh',
        TERM: options.term ?? 'xterm',
        PS1: `vt:${prompt} \\w\\$ `,
        VT_HOST: options.host,
        VT_TTY_FILE: ttyFile,
        VT_ROWS: String(options.rows | 0),
        VT_COLS: String(options.cols | 0),
      },
    })
    if (child.pid === undefined) {
      const e = await new Promise<NodeJS.ErrnoException>(resolve => child.once('error', resolve))
      throw new Error(
        e.code === 'ENOENT'
          ? 'script(1) is missing on this host: install util-linux (Debian: bsdutils) for host consoles'
          : `cannot start a host shell: ${e.message}`,
      )
    }
    child.on('error', () => {})
    const startTime = startTimeOf(child.pid)
    const shell = new HostShell(child, startTime, options)
    const record = await options.track(child.pid, startTime)
    child.stdout?.on('data', (chunk: Buffer) => options.sink.data(chunk))
    child.stderr?.on('data', (chunk: Buffer) => options.sink.data(chunk))
    child.stdin?.on('error', () => {})
    child.once('exit', (code, signal) => {
      options.untrack(record)
      shell.finish(signal ? `the host shell was killed by ${signal}` : `the host shell exited with code ${code}`, code)
    })
    return shell
  }

  write(chunk: Buffer): void {
    if (!this.done) this.child.stdin?.write(chunk)
  }

  resize(cols: number, rows: number): void {
    void (async () => {
      // The path is written as the shell starts: a resize right after the open may come first.
      for (let i = 0; i < 50 && !this.done; i++) {
        let tty = ''
        try {
          tty = readFileSync(this.ttyFile, 'utf8').trim()
        } catch {}
        if (/^\/dev\/pts\/\d+$/.test(tty)) {
          execFile('stty', ['-F', tty, 'rows', String(rows | 0), 'cols', String(cols | 0)], () => {})
          return
        }
        await delay(100)
      }
    })()
  }

  /** Ends the shell and everything started in it. */
  end(): void {
    if (this.done) return
    if (this.child.pid) killTree(this.child.pid, this.startTime, true)
    this.finish('detached', null)
  }

  private finish(reason: string, code: number | null): void {
    if (this.done) return
    this.done = true
    rmSync(this.ttyFile, { force: true })
    this.options.sink.closed(reason, code ?? undefined)
  }
}
