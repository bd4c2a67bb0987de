// One QEMU process: spawn (no shell), QMP, console capture, the guest command channel, readiness, lifecycle.
// QEMU runs in its own process group and, where setpriv exists, with a parent-death signal so that it dies
// with the agent; the session's reaper covers everything else (see agent/services/vm.ts).
// Over 400 lines on purpose: spawn, readiness, lifecycle and exit handling are one process's state machine.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import type { QmpEvent } from '../../src/protocol/qmp.ts'
import type { VmInfo, VmSpecParsed, VmStatus } from '../../src/protocol/vm.ts'
import { imageChannel } from '../image/index.ts'
import { AgentChannel, AgentUnavailableError } from '../qga/channel.ts'
import { QmpClient } from '../qmp/index.ts'
import type { SyncEndpoint } from '../sync/forwarder.ts'
import { paths, qemuArgv, type RamFile, type ResolvedDisk } from './argv.ts'
import { ConsoleCapture } from './console.ts'
import { connectUnix, GuestChannel, GuestError, type GuestResult } from './guest.ts'
import { vtReadFile, vtWriteFile } from './guestFiles.ts'

export class VmError extends Error {
  override name = 'VmError'
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message)
  }
}

let setprivPath: string | null | undefined
function setpriv(): string | null {
  if (setprivPath === undefined) {
    setprivPath = null
    for (const p of ['/usr/bin/setpriv', '/bin/setpriv']) if (existsSync(p)) setprivPath = p
  }
  return setprivPath
}

export interface MachineOptions {
  host: string
  dir: string
  /** Short directory for the unix sockets (sockets.ts): paths must fit in 108 bytes. */
  sockDir: string
  spec: VmSpecParsed
  accel: 'kvm' | 'tcg'
  memoryMiB: number
  kernel?: string
  initrd?: string
  append?: string
  disks: ResolvedDisk[]
  qemuBinary?: string
  onConsole?: (text: string) => void
  onState?: (status: VmStatus, reason?: string) => void
  onQmpEvent?: (ev: QmpEvent) => void
  /** Called right after the spawn, before anything can fail, e.g. to record the process for the reaper. */
  onSpawn?: (pid: number) => Promise<void> | void
  /** Answers `vt-sync` in the guest. */
  sync?: SyncEndpoint
  /** Guest RAM in a file (a template's or a clone's), see argv.ts. */
  ram?: RamFile
  /** See argv.ts. */
  nicsDetached?: boolean
}

export class Machine {
  readonly name: string
  readonly label: string
  readonly argv: string[]
  readonly dir: string
  readonly console: ConsoleCapture
  readonly guest: GuestChannel | undefined
  /** qemu-guest-agent's port, on every VM: the command channel of guests that are not vt's tiny one. */
  readonly agent: AgentChannel
  readonly startedAt = Date.now()
  readonly exited: Promise<{ code: number | null; signal: string | null }>
  status: VmStatus = 'starting'
  qmp: QmpClient | undefined
  readyMs: number | undefined
  exitInfo: { code: number | null; signal: string | null } | undefined
  private readonly proc: ChildProcess
  private readonly abort = new AbortController()
  private readonly t0 = performance.now()
  private transcriptAtExit: string | undefined

  private constructor(private readonly opts: MachineOptions) {
    const { spec } = opts
    this.name = spec.name
    this.label = `VM ${spec.name} on host ${opts.host}`
    this.dir = opts.dir
    const channel = readyMode(spec) === 'channel'
    this.argv = qemuArgv({ ...opts, channel })
    const p = paths(opts.dir, opts.sockDir)
    this.console = new ConsoleCapture(p.consoleLog)
    this.guest = channel
      ? new GuestChannel({
          label: this.label,
          cmdSocket: p.cmd,
          ctlSocket: p.ctl,
          sync: opts.sync,
          vmName: spec.name,
          host: opts.host,
          // The socket usually closes a moment before the exit status is known: wait for it briefly.
          disconnectReason: async () => {
            const exited = await Promise.race([this.exited.then(() => true), delay(2000).then(() => false)])
            return exited ? this.exitReason() : 'the command channel closed while QEMU still runs'
          },
        })
      : undefined
    this.agent = new AgentChannel(p.qga, this.label)
    const bin = opts.qemuBinary ?? 'qemu-system-x86_64'
    const sp = setpriv()
    const [file, args] = sp ? [sp, ['--pdeathsig', 'KILL', '--', bin, ...this.argv]] : [bin, this.argv]
    const errFd = openSync(p.stderr, 'a')
    try {
      this.proc = spawn(file, args, { stdio: ['ignore', 'ignore', errFd], detached: true })
    } finally {
      closeSync(errFd)
    }
    this.exited = new Promise(resolve => {
      this.proc.once('error', err => {
        this.exitInfo = { code: null, signal: null }
        this.onExit(`cannot start ${bin}: ${err.message}`)
        resolve(this.exitInfo)
      })
      this.proc.once('exit', (code, signal) => {
        this.exitInfo = { code, signal }
        this.onExit(this.exitReason())
        resolve(this.exitInfo)
      })
    })
  }

  get spec(): VmSpecParsed {
    return this.opts.spec
  }

  get ram(): RamFile | undefined {
    return this.opts.ram
  }

  get sockDir(): string {
    return this.opts.sockDir
  }

  get pid(): number {
    return this.proc.pid ?? -1
  }

  get alive(): boolean {
    return this.exitInfo === undefined
  }

  /** Spawns QEMU and connects QMP, console and channel; resolves when ready (unless paused/incoming). */
  static async start(opts: MachineOptions): Promise<Machine> {
    const m = new Machine(opts)
    try {
      if (m.pid > 0) await opts.onSpawn?.(m.pid)
      await m.connect()
      const mode = readyMode(opts.spec)
      if (!opts.spec.paused && !opts.spec.incoming && mode !== 'none') {
        await m.waitReady(readyTimeout(opts.spec))
      } else if (!opts.spec.paused && !opts.spec.incoming) {
        m.readyMs = performance.now() - m.t0
      }
      return m
    } catch (err) {
      await m.destroy()
      throw err
    }
  }

  private async connect(): Promise<void> {
    const p = paths(this.dir, this.opts.sockDir)
    const signal = this.abort.signal
    const exitedEarly = this.exited.then(() => {
      throw new VmError(`${this.label}: QEMU exited while starting: ${this.exitReason()}`, 'QEMU_EXITED')
    })
    const connectAll = async () => {
      const [qmp, con] = await Promise.all([
        QmpClient.connect(p.qmp, { label: this.label, signal, connectTimeout: 15_000 }),
        connectUnix(p.console, signal, 15_000),
        this.guest?.connect(signal, 15_000),
        this.agent.connect(signal, 15_000),
      ])
      this.qmp = qmp
      this.console.attach(con)
      if (this.opts.onConsole) this.console.onData(this.opts.onConsole)
      qmp.onEvent(ev => this.onQmpEvent(ev))
      qmp.note(`${this.label}: ${this.argv.join(' ')}`)
      const s = await qmp.execute('query-status')
      this.setStatus(mapStatus(s.status))
    }
    await Promise.race([connectAll(), exitedEarly])
  }

  /** Waits until the guest is ready (channel answered / console matched). */
  async waitReady(timeoutMs: number): Promise<void> {
    if (this.readyMs !== undefined) return
    const mode = readyMode(this.opts.spec)
    let ready: Promise<unknown>
    if (mode === 'channel') ready = (this.guest as GuestChannel).waitReady()
    else if (mode === 'agent') ready = this.agent.waitReady(timeoutMs + 1000)
    else if (mode === 'none') ready = Promise.resolve()
    else {
      const re = new RegExp(mode.console)
      ready = new Promise<void>(resolve => {
        if (re.test(this.console.text())) return resolve()
        const off = this.console.onData(() => {
          if (re.test(this.console.text(64 * 1024))) {
            off()
            resolve()
          }
        })
      })
    }
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const what =
          mode === 'channel'
            ? "the guest's command channel never answered"
            : mode === 'agent'
              ? 'qemu-guest-agent never answered'
              : `no console match`
        reject(
          new VmError(
            `${this.label} was not ready within ${timeoutMs} ms (${what}). Console tail:\n${indent(this.console.tail())}`,
            'READY_TIMEOUT',
          ),
        )
      }, timeoutMs)
    })
    const exited = this.exited.then(() => {
      throw new VmError(`${this.label}: QEMU exited before the guest was ready: ${this.deathReason()}`, 'QEMU_EXITED')
    })
    try {
      await Promise.race([ready, timeout, exited])
      this.readyMs = performance.now() - this.t0
    } finally {
      clearTimeout(timer)
    }
  }

  async exec(command: string, opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<GuestResult> {
    this.checkRunning(`run \`${command}\``)
    if (!this.guest) {
      await this.agentReady(opts.timeoutMs)
      return this.agent.guest.exec(command, opts)
    }
    if (!this.guest.ready) await this.waitReady(readyTimeout(this.opts.spec))
    return this.guest.exec(command, opts)
  }

  /** The file at `path` in the guest (through the agent, or `cat` on the tiny guest's channel). */
  async readFile(path: string, opts: { maxBytes?: number; timeoutMs?: number } = {}): Promise<Buffer> {
    this.checkRunning(`read ${path}`)
    if (this.guest) return vtReadFile((c, o) => this.exec(c, o), path, opts)
    await this.agentReady(opts.timeoutMs)
    return this.agent.guest.readFile(path, opts)
  }

  /** Writes `data` to `path` in the guest (created or replaced). */
  async writeFile(path: string, data: Uint8Array, opts: { mode?: number; timeoutMs?: number } = {}): Promise<void> {
    this.checkRunning(`write ${path}`)
    if (this.guest) return vtWriteFile((c, o) => this.exec(c, o), path, data, opts)
    await this.agentReady(opts.timeoutMs)
    return this.agent.guest.writeFile(path, data, opts)
  }

  /** Waits for qemu-guest-agent (up to the ready timeout, or less when the command's own timeout is less). */
  private async agentReady(timeoutMs: number | undefined): Promise<void> {
    if (this.agent.isReady) return
    const readyMs = readyTimeout(this.opts.spec)
    try {
      await this.agent.waitReady(Math.min(readyMs, timeoutMs ?? readyMs))
    } catch (err) {
      if (err instanceof AgentUnavailableError) throw new VmError(err.message, err.code)
      throw err
    }
  }

  private checkRunning(what: string): void {
    if (!this.alive) throw new VmError(`${this.label}: cannot ${what}: ${this.exitReason()}`, 'QEMU_EXITED')
    // A stopped guest would only let the command time out: say why at once.
    if (this.status === 'paused' || this.status === 'inmigrate' || this.status === 'postmigrate') {
      throw new VmError(`${this.label} is ${this.status}: cannot ${what} (resume it first)`, 'NOT_RUNNING')
    }
  }

  requireQmp(): QmpClient {
    if (!this.qmp || this.qmp.isClosed) throw new VmError(`${this.label}: QMP is not connected (${this.exitReason()})`)
    return this.qmp
  }

  async pause(): Promise<void> {
    await this.requireQmp().execute('stop')
    this.setStatus('paused')
  }

  async resume(): Promise<void> {
    await this.requireQmp().execute('cont')
    this.setStatus('running')
  }

  /** Graceful: poweroff through the guest channel (or ACPI), then QMP quit, then SIGKILL. */
  async shutdown(timeoutMs = 10_000): Promise<void> {
    if (!this.alive) return
    const deadline = Date.now() + timeoutMs
    if (this.guest?.ready && this.status === 'running') {
      this.guest.exec('sync; poweroff -f', { timeoutMs: Math.max(1, timeoutMs) }).catch(() => {})
    } else if (!this.guest && this.agent.isReady && this.status === 'running') {
      // A minimal systemd guest has no logind to act on the ACPI button: ask its agent.
      this.agent.client
        .execute('guest-shutdown', { mode: 'powerdown' }, { noReply: true, timeoutMs: 5000 })
        .catch(() => this.qmp?.execute('system_powerdown').catch(() => {}))
    } else {
      await this.qmp?.execute('system_powerdown').catch(() => {})
    }
    const exitedInTime = await Promise.race([this.exited.then(() => true), delay(timeoutMs).then(() => false)])
    if (exitedInTime) return
    this.qmp?.note(`guest did not power off within ${timeoutMs} ms; quitting`)
    await Promise.race([this.qmp?.quit().catch(() => {}), delay(Math.max(1000, deadline - Date.now()))])
    const quit = await Promise.race([this.exited.then(() => true), delay(2000).then(() => false)])
    if (!quit) await this.kill()
  }

  /** SIGKILL the process group and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.alive) return
    try {
      process.kill(-this.pid, 'SIGKILL')
    } catch {
      try {
        this.proc.kill('SIGKILL')
      } catch {}
    }
    await this.exited
  }

  async destroy(): Promise<void> {
    this.abort.abort(new Error(`${this.label} was destroyed`))
    await this.kill()
    this.cleanup()
  }

  transcript(): string {
    return this.qmp?.transcriptText() ?? this.transcriptAtExit ?? ''
  }

  info(
    host: string,
    extra: { disks: VmInfo['disks']; consoles: Record<string, string>; restored?: VmInfo['restored'] },
  ): VmInfo {
    const p = paths(this.dir, this.opts.sockDir)
    return {
      name: this.name,
      host,
      pid: this.pid,
      status: this.status,
      accel: this.opts.accel,
      memoryMiB: this.opts.memoryMiB,
      cpus: this.opts.spec.cpus ?? 1,
      dir: this.dir,
      qmpSocket: p.qmp,
      consoleLog: p.consoleLog,
      consoles: extra.consoles,
      disks: extra.disks,
      argv: [this.opts.qemuBinary ?? 'qemu-system-x86_64', ...this.argv],
      startedAt: this.startedAt,
      readyMs: this.readyMs,
      ...(this.exitInfo ? { exitCode: this.exitInfo.code, exitSignal: this.exitInfo.signal } : {}),
      ...(extra.restored ? { restored: extra.restored } : {}),
    }
  }

  exitReason(): string {
    if (!this.exitInfo) return 'QEMU is running'
    const { code, signal } = this.exitInfo
    const how = signal ? `QEMU was killed by ${signal}` : `QEMU exited with code ${code}`
    const err = this.stderrTail()
    return err ? `${how}: ${err}` : how
  }

  /** Why a guest died before it was ready: QEMU's exit, the kernel's last words, and the console tail. */
  private deathReason(): string {
    const tail = this.console.tail()
    const words = this.console.lastWords()
    const exit = this.exitReason()
    if (words) return `${exit}; ${words}. Console tail:\n${indent(tail)}`
    if (!tail) {
      // With -no-reboot a guest reset ends QEMU with code 0; a kernel that cannot even unpack says nothing.
      const reset = this.exitInfo?.code === 0 && !this.exitInfo.signal
      return reset
        ? `${exit}: the guest reset before printing anything on its console (a kernel that cannot unpack in ` +
            `${this.opts.memoryMiB} MiB of memory, or one that does not boot on this machine)`
        : `${exit} (no console output)`
    }
    return `${exit}. Console tail:\n${indent(tail)}`
  }

  stderrTail(): string {
    try {
      return readFileSync(paths(this.dir, this.opts.sockDir).stderr, 'utf8').trim().split('\n').slice(-5).join('\n')
    } catch {
      return ''
    }
  }

  private onExit(reason: string): void {
    this.abort.abort(new Error(reason))
    this.setStatus('exited', reason)
    this.guest?.close(reason)
    this.agent.close(reason)
    this.transcriptAtExit = this.qmp?.transcriptText()
    this.qmp?.close()
    this.console.close()
  }

  private cleanup(): void {
    this.qmp?.close()
    this.console.close()
    this.guest?.close('the VM was destroyed')
    this.agent.close('the VM was destroyed')
  }

  private onQmpEvent(ev: QmpEvent): void {
    this.agent.onQmpEvent(ev)
    if (ev.event === 'STOP') this.setStatus('paused')
    else if (ev.event === 'RESUME') this.setStatus('running')
    else if (ev.event === 'SHUTDOWN') this.setStatus('shutdown')
    if (ev.event === 'STOP' || ev.event === 'RESUME' || ev.event === 'MIGRATION') {
      // Paused can mean 'postmigrate' or 'inmigrate'; ask QEMU for the precise state.
      this.qmp
        ?.execute('query-status')
        .then(s => this.setStatus(mapStatus(s.status)))
        .catch(() => {})
    }
    this.opts.onQmpEvent?.(ev)
  }

  private setStatus(s: VmStatus, reason?: string): void {
    if (this.status === 'exited') return
    if (s === this.status) return
    this.status = s
    this.opts.onState?.(s, reason)
  }
}

export function readyMode(spec: VmSpecParsed): 'channel' | 'agent' | 'none' | { console: string } {
  if (spec.ready) return spec.ready
  if (spec.kernel || (!spec.image && (spec.disks?.length ?? 0) > 0 && spec.disks?.every(d => !d.image))) return 'none'
  return imageChannel(spec.image ?? 'tiny') === 'qga' ? 'agent' : 'channel'
}

/** The spec's ready timeout; a systemd guest under TCG on a busy machine needs minutes, the tiny one seconds. */
function readyTimeout(spec: VmSpecParsed): number {
  return spec.readyTimeoutMs ?? (readyMode(spec) === 'agent' ? 300_000 : 60_000)
}

function mapStatus(s: string): VmStatus {
  switch (s) {
    case 'running':
      return 'running'
    case 'inmigrate':
      return 'inmigrate'
    case 'postmigrate':
      return 'postmigrate'
    case 'shutdown':
      return 'shutdown'
    case 'prelaunch':
    case 'paused':
    case 'suspended':
    case 'finish-migrate':
    case 'debug':
    case 'save-vm':
    case 'restore-vm':
      return 'paused'
    default:
      return 'stopped'
  }
}

function indent(text: string): string {
  return text
    ? text
        .split('\n')
        .map(l => `  | ${l}`)
        .join('\n')
    : '  | (no console output)'
}

export { GuestError }
export function qemuImg(args: string[]): string {
  try {
    return execFileSync('qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new VmError(`qemu-img ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`)
  }
}
