// The host end of the tiny guest's command channel (see agent/image/init.ts for the guest end and the
// protocol). Requests are queued and run one at a time; replies are length-prefixed frames tagged with a
// random per-request nonce, so output can be anything and a late reply to a timed-out request is skipped.
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { type SyncOp, type SyncReply, syncOp } from '../../src/protocol/sync.ts'
import type { SyncCall, SyncEndpoint } from '../sync/forwarder.ts'

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
    private readonly onSync: (nonce: string, op: string, args: string[]) => void = () => {},
    private readonly onIdent: (rc: number) => void = () => {},
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
      const ident = /^@@vt-ident (\d+)$/.exec(line)
      if (ident) {
        this.onIdent(Number(ident[1]))
        continue
      }
      // vt-sync in the guest: "@@sync <nonce> <op> x<hex> x<hex> x<hex>" (see src/image/init.ts).
      const sync = /^@@sync ([0-9A-Za-z]{1,32}) ([a-z-]{1,16})((?: x(?:[0-9a-f]{2})*){0,4})$/.exec(line)
      if (sync) {
        const args = sync[3]
          .split(' ')
          .filter(Boolean)
          .map(a => Buffer.from(a.slice(1), 'hex').toString('utf8'))
        this.onSync(sync[1], sync[2], args)
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
  /** Where `vt-sync` in the guest is answered (the session's forwarder to the controller). */
  sync?: SyncEndpoint
  vmName?: string
  host?: string
}

/** `vt-sync <op> args...` as the guest sends it → a request; a string is a usage error. */
export function guestSyncOp(op: string, args: string[]): SyncOp | string {
  const timeout = (s: string | undefined) => {
    if (s === undefined || s === '') return {}
    const n = Number(s)
    return Number.isFinite(n) && n >= 0 ? { timeoutMs: Math.round(n * 1000) } : undefined
  }
  const count = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : Number.NaN)
  const [a = '', b, c] = args
  const t = timeout(op === 'wait' ? b : c)
  if (!t) return `--timeout wants seconds, got ${JSON.stringify(op === 'wait' ? b : c)}`
  const candidate =
    op === 'barrier'
      ? { op: 'barrier', name: a, parties: count(b), ...t }
      : op === 'send'
        ? { op: 'send', key: a, value: b ?? '' }
        : op === 'wait'
          ? { op: 'wait', key: a, ...t }
          : op === 'wait-all'
            ? { op: 'waitAll', key: a, count: count(b), ...t }
            : op === 'role'
              ? { op: 'role' }
              : undefined
  if (!candidate) return `unknown operation ${JSON.stringify(op)}`
  const parsed = syncOp.safeParse(candidate)
  if (parsed.success) return parsed.data
  return parsed.error.issues.map(i => `${i.path.join('.') || op}: ${i.message}`).join('; ')
}

/** The text and exit code vt-sync in the guest prints and exits with. */
function guestAnswer(reply: SyncReply): { rc: number; text: string } {
  if (!reply.ok) return { rc: reply.code === 'timeout' ? 2 : 1, text: reply.message }
  if (reply.values) return { rc: 0, text: reply.values.join('\n') }
  return { rc: 0, text: reply.value ?? '' }
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
  private readonly syncCalls = new Map<string, SyncCall>()
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
      undefined,
      (nonce, op, args) => this.onSync(nonce, op, args),
      rc => {
        const w = this.identWaiter
        this.identWaiter = undefined
        w?.resolve(rc)
      },
    )
  }

  private identWaiter: { resolve: (rc: number) => void; reject: (e: Error) => void } | undefined

  /**
   * Runs /bin/vt-identity with `args` straight from the guest's command loop (one fork and exec, no script
   * file, no output files): a restored clone's first command, sent before the guest runs again, whose answer
   * also proves the loop is ready. Resolves with its exit code. Args must be shell words without glob
   * characters (hostname, digits, hex).
   */
  identify(args: string[], timeoutMs: number): Promise<number> {
    if (this.closedReason) return Promise.reject(new GuestError(`${this.opts.label}: ${this.closedReason}`))
    if (!this.cmd) return Promise.reject(new GuestError(`${this.opts.label}: command channel not connected`))
    if (this.identWaiter) return Promise.reject(new GuestError(`${this.opts.label}: an identity is being applied`))
    const cmd = this.cmd
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.identWaiter = undefined
        reject(new GuestTimeoutError(`${this.opts.label}: vt-identity did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.identWaiter = {
        resolve: rc => {
          clearTimeout(timer)
          resolve(rc)
        },
        reject: e => {
          clearTimeout(timer)
          reject(e)
        },
      }
      cmd.write(`ident ${args.join(' ')}\n`)
    })
  }

  private onSync(nonce: string, op: string, args: string[]): void {
    const write = (rc: number, text: string) => {
      if (!this.closedReason) this.cmd?.write(`@@sync ${nonce} ${rc} ${escapeForGuest(text)}\n`)
    }
    const request = guestSyncOp(op, args)
    if (typeof request === 'string' || !this.opts.sync) {
      write(typeof request === 'string' ? 64 : 1, typeof request === 'string' ? request : 'no vt-sync here')
      return
    }
    this.syncCalls.get(nonce)?.cancel('a new request reused its nonce')
    const from = { kind: 'vm' as const, label: this.opts.label, host: this.opts.host, vm: this.opts.vmName }
    const call = this.opts.sync.request(from, request)
    this.syncCalls.set(nonce, call)
    void call.reply.then(reply => {
      if (this.syncCalls.get(nonce) !== call) return
      this.syncCalls.delete(nonce)
      const { rc, text } = guestAnswer(reply)
      write(rc, text)
    })
  }

  /** vt-sync runs inside a command: when that ends (or the guest dies), its requests go with it. */
  private cancelSync(reason: string): void {
    for (const call of this.syncCalls.values()) call.cancel(reason)
    this.syncCalls.clear()
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
        this.cancelSync(`${this.opts.label}: \`${short(command)}\` timed out after ${timeoutMs} ms`)
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
      this.cancelSync(`${this.opts.label}: \`${short(cur.command)}\` ended (vt-sync must run in the foreground)`)
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
    this.cancelSync(`${this.opts.label}: ${reason}`)
    this.closedReason = reason
    const ident = this.identWaiter
    this.identWaiter = undefined
    ident?.reject(new GuestError(`${this.opts.label}: vt-identity failed: ${reason}`))
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
      await delay(2)
    }
  }
}
