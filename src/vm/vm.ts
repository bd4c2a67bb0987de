// The controller's handle on one VM running on some host: exec in the guest, the serial console, QMP and
// lifecycle, all through the host agent's `vm` service. `host` changes when the VM migrates (attachTo).
import type { Host } from '../cluster/host.ts'
import type { Network } from '../cluster/network.ts'
import type { MigrationResult } from '../migration/types.ts'
import { type MigrateVmOptions, migrateVm } from '../migration/vm.ts'
import { VtError } from '../protocol/errors.ts'
import type { QmpArgs, QmpCommandKey, QmpReturn } from '../protocol/qmp.ts'
import type { GuestExecResult, VmCreateOptions, VmInfo, VmQmpEvent, VmSpec, VmStatus } from '../protocol/vm.ts'
import { apiStep, commandTitle } from '../runner/apiStep.ts'
import { showBoot } from './bootProgress.ts'
import { restoreVm, snapshotVm, type VmSnapshot } from './snapshot.ts'

export interface VmExecOptions {
  /** Milliseconds; the guest's process tree is killed when it passes. Default 60 s. */
  timeout?: number
  env?: Record<string, string>
}

export interface VmExecResult {
  /** Output decoded as UTF-8; the exact bytes are in stdoutBytes / stderrBytes. */
  stdout: string
  stderr: string
  exitCode: number
  durationMs: number
  stdoutBytes: Buffer
  stderrBytes: Buffer
}

/** `succeed` saw a non-zero exit, or `fail` saw zero. Carries the command, exit code and output. */
export class VmCommandError extends VtError {
  constructor(
    readonly vm: string,
    override readonly host: string,
    readonly command: string,
    readonly result: VmExecResult,
    expected: 'success' | 'failure',
  ) {
    const verdict =
      expected === 'success' ? `failed with exit code ${result.exitCode}` : 'was expected to fail but exited 0'
    super(
      expected === 'success' ? 'VmCommandFailedError' : 'VmCommandSucceededError',
      `VM ${vm} on host ${host}: \`${command}\` ${verdict}${outputText(result)}`,
    )
  }
}

function outputText(r: VmExecResult): string {
  const cut = (s: string) => (s.length > 2000 ? `…${s.slice(-2000)}` : s)
  let out = ''
  if (r.stdout.trim()) out += `\nstdout:\n${cut(r.stdout.trimEnd())}`
  if (r.stderr.trim()) out += `\nstderr:\n${cut(r.stderr.trimEnd())}`
  return out
}

const CONSOLE_KEEP = 1024 * 1024

export class VmConsole {
  private buffer = ''
  private readonly waiters = new Set<() => void>()
  constructor(private readonly vm: Vm) {}

  /** @internal fed by the agent's console events */
  push(text: string): void {
    this.buffer = (this.buffer + text).slice(-CONSOLE_KEEP)
    for (const w of [...this.waiters]) w()
  }

  /** Console output received so far (the last MiB). */
  text(): string {
    return this.buffer
  }

  /** The whole console log from the host (includes output from before this handle existed). */
  fetch(tailBytes?: number): Promise<string> {
    return this.vm.host.service('vm').console(this.vm.name, tailBytes === undefined ? undefined : { tailBytes })
  }

  /** Types into the serial console. */
  write(text: string): Promise<void> {
    return this.vm.host.service('vm').consoleWrite(this.vm.name, text)
  }

  /** Resolves with the match once the console shows `pattern`; throws with the console tail on timeout. */
  async waitFor(pattern: RegExp | string, options: { timeout?: number } = {}): Promise<RegExpMatchArray> {
    const re = typeof pattern === 'string' ? new RegExp(escapeRegExp(pattern)) : pattern
    const timeout = options.timeout ?? 30_000
    const found = re.exec(this.buffer)
    if (found) return found
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(this.buffer)
        if (m) {
          done()
          resolve(m)
        }
      }
      const timer = setTimeout(async () => {
        done()
        // Events are dropped while a link is down: look at the host's log before giving up.
        const full = await this.fetch(CONSOLE_KEEP).catch(() => this.buffer)
        const m = re.exec(full)
        if (m) return resolve(m)
        const tail = full.split('\n').slice(-15).join('\n')
        reject(
          new VtError(
            'ConsoleTimeoutError',
            `VM ${this.vm.name} on host ${this.vm.host.name}: console did not show ${re} within ${timeout} ms. Console tail:\n${tail}`,
          ),
        )
      }, timeout)
      const done = () => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
    })
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

export class Vm {
  readonly console: VmConsole
  /** Raw QMP events as they arrive (name, data). */
  readonly events: VmQmpEvent[] = []
  private offs: (() => void)[] = []
  private lastStatus: VmStatus
  destroyed = false
  /** The hosts of the cluster this VM belongs to (set by the fixtures): `migrate` refuses any other. */
  clusterHosts?: readonly Host[]
  /** @internal The cluster's networks (set by the fixtures): for ip() and mac(). */
  networks?: { network(name: string): Network }

  private constructor(
    public host: Host,
    public info: VmInfo,
    /** The spec it was created with (a migration starts the destination from it). */
    readonly spec: VmSpec,
  ) {
    this.console = new VmConsole(this)
    this.lastStatus = info.status
  }

  get name(): string {
    return this.info.name
  }

  get status(): VmStatus {
    return this.lastStatus
  }

  /**
   * Creates and boots a VM on `host`; resolves when it is ready for exec. The host's agent books the VM's memory
   * and cpus first (see VmCreateOptions: wait for them, or take over a reservation).
   */
  static async create(host: Host, spec: VmSpec, options?: VmCreateOptions): Promise<Vm> {
    // Subscribe before creating, so that no early console output is missed.
    const pending: string[] = []
    const offConsole = host.on('vm', 'console', e => {
      if (e.name === spec.name) pending.push(e.data)
    })
    const endBoot = showBoot(host, spec.name)
    let info: VmInfo
    try {
      info = await host.service('vm').create(spec, options)
    } finally {
      offConsole()
      endBoot()
    }
    const vm = new Vm(host, info, spec)
    vm.console.push(pending.join(''))
    vm.subscribe()
    return vm
  }

  /** @internal Re-points the handle at another host (after a migration) with the VM's info there. */
  attachTo(host: Host, info: VmInfo): void {
    for (const off of this.offs.splice(0)) off()
    this.host = host
    this.info = info
    this.lastStatus = info.status
    this.subscribe()
  }

  private subscribe(): void {
    const mine = (e: { name: string }) => e.name === this.name
    this.offs.push(
      this.host.on('vm', 'console', e => {
        if (mine(e)) this.console.push(e.data)
      }),
      this.host.on('vm', 'state', e => {
        if (mine(e)) this.lastStatus = e.status
      }),
      this.host.on('vm', 'qmp', e => {
        if (!mine(e)) return
        this.events.push(e)
        if (this.events.length > 1000) this.events.shift()
      }),
    )
  }

  private get svc() {
    return this.host.service('vm')
  }

  /** Runs a shell command in the guest. A non-zero exit is a result, not an error (see succeed/fail). */
  exec(command: string, options: VmExecOptions = {}): Promise<VmExecResult> {
    return apiStep(`${this.name}: exec ${commandTitle(command)}`, () => this.run(command, options))
  }

  private async run(command: string, options: VmExecOptions): Promise<VmExecResult> {
    if (typeof command !== 'string' || !command.trim()) {
      throw new VtError('BadRequestError', `VM ${this.name}: exec needs a non-empty command string`)
    }
    const r: GuestExecResult = await this.svc.exec(this.name, {
      command,
      ...(options.env ? { env: options.env } : {}),
      ...(options.timeout !== undefined ? { timeoutMs: options.timeout } : {}),
    })
    const stdoutBytes = Buffer.from(r.stdout)
    const stderrBytes = Buffer.from(r.stderr)
    return {
      stdout: stdoutBytes.toString('utf8'),
      stderr: stderrBytes.toString('utf8'),
      exitCode: r.exitCode,
      durationMs: r.durationMs,
      stdoutBytes,
      stderrBytes,
    }
  }

  /** Runs a command that must exit 0; returns its stdout. */
  succeed(command: string, options: VmExecOptions = {}): Promise<string> {
    return apiStep(`${this.name}: succeed ${commandTitle(command)}`, async () => {
      const r = await this.run(command, options)
      if (r.exitCode !== 0) throw new VmCommandError(this.name, this.host.name, command, r, 'success')
      return r.stdout
    })
  }

  /** Runs a command that must exit non-zero; returns its stderr. */
  fail(command: string, options: VmExecOptions = {}): Promise<string> {
    return apiStep(`${this.name}: fail ${commandTitle(command)}`, async () => {
      const r = await this.run(command, options)
      if (r.exitCode === 0) throw new VmCommandError(this.name, this.host.name, command, r, 'failure')
      return r.stderr
    })
  }

  /** The bytes of the file at `path` in the guest (through its command channel: vt's, or qemu-guest-agent). */
  readFile(path: string, options: { maxBytes?: number; timeout?: number } = {}): Promise<Buffer> {
    return apiStep(`${this.name}: read ${path}`, async () => {
      const data = await this.svc.readFile(this.name, {
        path,
        ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
        ...(options.timeout !== undefined ? { timeoutMs: options.timeout } : {}),
      })
      return Buffer.from(data)
    })
  }

  /** Writes `data` (a string is UTF-8) to `path` in the guest, replacing the file; `mode` e.g. 0o755. */
  writeFile(path: string, data: string | Uint8Array, options: { mode?: number; timeout?: number } = {}): Promise<void> {
    return apiStep(`${this.name}: write ${path}`, () =>
      this.svc.writeFile(this.name, {
        path,
        data,
        ...(options.mode !== undefined ? { mode: options.mode } : {}),
        ...(options.timeout !== undefined ? { timeoutMs: options.timeout } : {}),
      }),
    )
  }

  /** Retries `command` until it exits 0; returns its stdout. Throws with the last output on timeout. */
  waitUntilSucceeds(command: string, options: { timeout?: number; interval?: number } = {}): Promise<string> {
    return apiStep(`${this.name}: wait until ${commandTitle(command)} succeeds`, () =>
      this.retryUntilSucceeds(command, options),
    )
  }

  private async retryUntilSucceeds(command: string, options: { timeout?: number; interval?: number }): Promise<string> {
    const timeout = options.timeout ?? 60_000
    const interval = options.interval ?? 200
    const deadline = Date.now() + timeout
    let last: VmExecResult | undefined
    for (;;) {
      const left = deadline - Date.now()
      last = await this.run(command, { timeout: Math.max(1000, left) })
      if (last.exitCode === 0) return last.stdout
      if (Date.now() + interval > deadline) break
      await new Promise(r => setTimeout(r, interval))
    }
    throw new VtError(
      'WaitTimeoutError',
      `VM ${this.name} on host ${this.host.name}: \`${command}\` did not succeed within ${timeout} ms; last exit code ${last.exitCode}${outputText(last)}`,
    )
  }

  /** Sends a QMP command to this VM's QEMU. */
  qmp<K extends QmpCommandKey>(command: K, args?: QmpArgs<K>): Promise<QmpReturn<K>> {
    return this.svc.qmp(this.name, command, args)
  }

  /** Waits for a QMP event, optionally with matching data fields. `sinceStart` also matches past events. */
  waitForQmpEvent(
    event: string,
    options: { data?: Record<string, unknown>; timeout?: number; sinceStart?: boolean } = {},
  ): Promise<VmQmpEvent> {
    return this.svc.waitForQmpEvent(this.name, {
      event,
      ...(options.data ? { data: options.data } : {}),
      ...(options.timeout !== undefined ? { timeoutMs: options.timeout } : {}),
      ...(options.sinceStart ? { sinceStart: true } : {}),
    })
  }

  /** The QMP transcript (commands, replies, events with timestamps) for reports. */
  transcript(): Promise<string> {
    return this.svc.transcript(this.name)
  }

  async refresh(): Promise<VmInfo> {
    this.info = await this.svc.info(this.name)
    this.lastStatus = this.info.status
    return this.info
  }

  pause(): Promise<void> {
    return apiStep(`${this.name}: pause`, async () => {
      await this.svc.pause(this.name)
      this.lastStatus = 'paused'
    })
  }

  resume(): Promise<void> {
    return apiStep(`${this.name}: resume`, async () => {
      await this.svc.resume(this.name)
      this.lastStatus = 'running'
    })
  }

  /** Powers the guest off (then kills QEMU after `timeout`). */
  shutdown(options: { timeout?: number } = {}): Promise<void> {
    return apiStep(`${this.name}: shutdown`, async () => {
      this.info = await this.svc.shutdown(
        this.name,
        options.timeout === undefined ? undefined : { timeoutMs: options.timeout },
      )
      this.lastStatus = this.info.status
    })
  }

  /** Kills QEMU and removes the VM's files on the host. Safe to call twice. */
  /** The VM's address on a guest network (without prefix), e.g. for `ping`. */
  ip(network: string): string {
    return this.address(network).ip.split('/')[0]
  }

  /** The VM's MAC on a guest network (the same on every host it migrates to). */
  mac(network: string): string {
    return this.address(network).mac
  }

  private address(network: string) {
    if (!this.networks) throw new Error(`VM ${this.name} was not created by createVm: it has no guest networks`)
    const found = this.networks.network(network).addressesOf(this.name)[0]
    if (!found)
      throw new Error(`VM ${this.name} has no NIC on network ${network}: give it nics: [{ network: '${network}' }]`)
    return found
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    for (const off of this.offs.splice(0)) off()
    await apiStep(`${this.name}: destroy`, () => this.svc.destroy(this.name))
  }

  /**
   * Live-migrates the VM to `options.to` (src/migration): afterwards this handle points at the destination.
   * Reported as a test step with the result attached; throws MigrationError with the source still running.
   */
  migrate(options: MigrateVmOptions<Vm>): Promise<MigrationResult> {
    return migrateVm(this, { hosts: this.clusterHosts, ...options })
  }

  /** Saves the live state (memory, devices) and disks as snapshot `name`; the guest runs on. */
  snapshot(name: string): Promise<VmSnapshot> {
    return snapshotVm(this, name)
  }

  /** Puts the VM back into snapshot `name` (same name and MACs; its clock is set to now, its RNG reseeded). */
  restore(snapshot: string | VmSnapshot): Promise<void> {
    return restoreVm(this, snapshot)
  }

  /** @internal the VM runs in a new QEMU on the same host (restored). */
  restarted(info: VmInfo): void {
    this.info = info
    this.lastStatus = info.status
  }

  /** @internal MigratableVm: the migration completed, the VM is now `info` on `host`. */
  rebind(host: Host, info: VmInfo): void {
    this.attachTo(host, info)
  }

  toString(): string {
    return `Vm(${this.name} on ${this.host.name})`
  }
}
