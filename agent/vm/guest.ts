// The host end of the tiny guest's command channel (see agent/image/init.ts for the guest end and the
// protocol). Requests are queued and run one at a time; replies are length-prefixed frames tagged with a
// random per-request nonce, so output can be anything and a late reply to a timed-out request is skipped.
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'

export interface GuestResult {
  stdout: Buffer
  stderr: Buffer
  exitCode: number
  durationMs: number
}

export class GuestError extends Error {
  override name = 'GuestError'
}

export class GuestTimeoutError extends GuestError {
  override name = 'GuestTimeoutError'
}

/** Escapes a script for the guest's `printf '%b'`: safe bytes as is, everything else as \0ooo. */
export function escapeForGuest(script: string): string {
  let out = ''
  for (const b of Buffer.from(script, 'utf8')) {
    const c = String.fromCharCode(b)
    out += /[A-Za-z0-9_./,:=+@%^-]/.test(c) ? c : `\\0${b.toString(8).padStart(3, '0')}`
  }
  return out
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** The script the guest sources: exported variables, then the command. */
export function guestScript(command: string, env: Record<string, string> = {}): string {
  const lines: string[] = []
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k)) throw new GuestError(`invalid environment variable name ${JSON.stringify(k)}`)
    lines.push(`export ${k}=${shellQuote(v)}`)
  }
  lines.push(command)
  return `${lines.join('\n')}\n`
}

interface Frame {
  nonce: string
  kind: 'O' | 'E' | 'X'
  value: number
  data?: Buffer
}

/** Incremental parser of the guest → host stream: headers `@@<nonce> <O|E|X> <n>` and O/E payloads. */
export class FrameParser {
  private buf: Buffer = Buffer.alloc(0)
  private want: { nonce: string; kind: 'O' | 'E'; len: number } | undefined
  constructor(
    private readonly onFrame: (f: Frame) => void,
    private readonly onReady: (uptime: string) => void,
    private readonly onJunk: (text: string) => void = () => {},
  ) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk
    for (;;) {
      if (this.want) {
        if (this.buf.length < this.want.len) return
        const data = this.buf.subarray(0, this.want.len)
        this.buf = this.buf.subarray(this.want.len)
        const w = this.want
        this.want = undefined
        this.onFrame({ nonce: w.nonce, kind: w.kind, value: w.len, data: Buffer.from(data) })
        continue
      }
      const nl = this.buf.indexOf(10)
      if (nl < 0) {
        if (this.buf.length > 4096) {
          this.onJunk(this.buf.toString('latin1'))
          this.buf = Buffer.alloc(0)
        }
        return
      }
      const line = this.buf.subarray(0, nl).toString('latin1')
      this.buf = this.buf.subarray(nl + 1)
      if (!line) continue
      const ready = /^@@vt-ready (\S*)$/.exec(line)
      if (ready) {
        this.onReady(ready[1])
        continue
      }
      const m = /^@@([0-9a-f]{16}) ([OEX]) (-?\d+)$/.exec(line)
      if (!m) {
        this.onJunk(line)
        continue
      }
      const kind = m[2] as Frame['kind']
      const value = Number(m[3])
      if (kind === 'X') this.onFrame({ nonce: m[1], kind, value })
      else if (value === 0) this.onFrame({ nonce: m[1], kind, value, data: Buffer.alloc(0) })
      else this.want = { nonce: m[1], kind, len: value }
    }
  }
}

interface Current {
  nonce: string
  command: string
  stdout?: Buffer
  stderr?: Buffer
  started: number
  resolve: (r: GuestResult) => void
  reject: (e: Error) => void
  timer?: NodeJS.Timeout
}

export interface GuestChannelOptions {
  /** Names the VM and host in errors: "VM a on host h1". */
  label: string
  cmdSocket: string
  ctlSocket: string
  /** Why the channel dropped (e.g. QEMU's exit status); asked when the socket closes. */
  disconnectReason?: () => Promise<string>
}

export class GuestChannel {
  private cmd: net.Socket | undefined
  private ctl: net.Socket | undefined
  private current: Current | undefined
  private queue: Promise<unknown> = Promise.resolve()
  private readyWaiters: ((uptime: string) => void)[] = []
  private isReady = false
  private closedReason: string | undefined
  private readonly parser: FrameParser
  /** Guest uptime (s) when it first reported ready. */
  guestUptime: string | undefined

  constructor(private readonly opts: GuestChannelOptions) {
    this.parser = new FrameParser(
      f => this.onFrame(f),
      up => {
        this.guestUptime ??= up
        this.isReady = true
        for (const w of this.readyWaiters.splice(0)) w(up)
      },
    )
  }

  get ready(): boolean {
    return this.isReady
  }

  /** Connects both sockets (retrying while QEMU creates them). */
  async connect(signal: AbortSignal, timeoutMs = 10_000): Promise<void> {
    this.cmd = await connectUnix(this.opts.cmdSocket, signal, timeoutMs)
    this.ctl = await connectUnix(this.opts.ctlSocket, signal, timeoutMs)
    this.ctl.on('data', () => {})
    this.ctl.on('error', () => {})
    this.cmd.on('data', chunk => this.parser.push(chunk))
    this.cmd.on('error', () => {})
    this.cmd.on('close', () => {
      const generic = 'the command channel closed'
      const why = this.opts.disconnectReason?.() ?? Promise.resolve(generic)
      void why.catch(() => generic).then(reason => this.close(reason))
    })
    // The guest answers a ping once its loop runs; it also announces itself, but that may predate us.
    this.cmd.write('ping\n')
  }

  /** Resolves when the guest's command loop answered. */
  waitReady(): Promise<string> {
    if (this.isReady) return Promise.resolve(this.guestUptime ?? '')
    if (this.closedReason) return Promise.reject(new GuestError(`${this.opts.label}: ${this.closedReason}`))
    return new Promise(resolve => this.readyWaiters.push(resolve))
  }

  /** Runs a command in the guest. Calls are queued: one runs at a time. */
  exec(command: string, opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<GuestResult> {
    const script = guestScript(command, opts.env)
    const run = () => this.run(command, script, opts.timeoutMs ?? 60_000)
    const p = this.queue.then(run, run)
    this.queue = p.catch(() => {})
    return p
  }

  private run(command: string, script: string, timeoutMs: number): Promise<GuestResult> {
    if (this.closedReason) {
      return Promise.reject(
        new GuestError(`${this.opts.label}: cannot run \`${short(command)}\`: ${this.closedReason}`),
      )
    }
    if (!this.cmd) return Promise.reject(new GuestError(`${this.opts.label}: command channel not connected`))
    const nonce = randomBytes(8).toString('hex')
    return new Promise<GuestResult>((resolve, reject) => {
      const cur: Current = { nonce, command, started: performance.now(), resolve, reject }
      cur.timer = setTimeout(() => {
        if (this.current !== cur) return
        this.current = undefined
        this.ctl?.write('kill\n')
        reject(
          new GuestTimeoutError(
            `${this.opts.label}: \`${short(command)}\` did not finish within ${timeoutMs} ms (its processes were killed)`,
          ),
        )
      }, timeoutMs)
      this.current = cur
      ;(this.cmd as net.Socket).write(`${nonce} ${escapeForGuest(script)}\n`)
    })
  }

  private onFrame(f: Frame): void {
    const cur = this.current
    if (!cur || cur.nonce !== f.nonce) return // a reply to a request that timed out
    if (f.kind === 'O') cur.stdout = f.data
    else if (f.kind === 'E') cur.stderr = f.data
    else {
      clearTimeout(cur.timer)
      this.current = undefined
      cur.resolve({
        stdout: cur.stdout ?? Buffer.alloc(0),
        stderr: cur.stderr ?? Buffer.alloc(0),
        exitCode: f.value,
        durationMs: performance.now() - cur.started,
      })
    }
  }

  /** Fails the running and queued requests with `reason` (e.g. "QEMU was killed (SIGKILL)"). */
  close(reason: string): void {
    if (this.closedReason) return
    this.closedReason = reason
    const cur = this.current
    this.current = undefined
    if (cur) {
      clearTimeout(cur.timer)
      cur.reject(new GuestError(`${this.opts.label}: \`${short(cur.command)}\` failed: ${reason}`))
    }
    this.cmd?.destroy()
    this.ctl?.destroy()
  }

  /** Replaces a generic close reason with a precise one (called when the QEMU exit status is known). */
  get closed(): string | undefined {
    return this.closedReason
  }
}

function short(cmd: string): string {
  const one = cmd.replace(/\s+/g, ' ').trim()
  return one.length > 120 ? `${one.slice(0, 120)}…` : one
}

export async function connectUnix(path: string, signal: AbortSignal, timeoutMs: number): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (signal.aborted) throw new GuestError(`gave up connecting to ${path}: ${String(signal.reason ?? 'aborted')}`)
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.createConnection({ path })
        s.once('connect', () => {
          s.off('error', reject)
          // Until its owner adds handlers, an error (QEMU dying) must not become an uncaught exception.
          s.on('error', () => {})
          resolve(s)
        })
        s.once('error', reject)
      })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) {
        throw new GuestError(`cannot connect to ${path}: ${(err as Error).message}`)
      }
      await delay(10)
    }
  }
}
