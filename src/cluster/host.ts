// A host as tests see it: name, address, facts, and typed helpers over its agent's services. Every error
// names the host, the service and the call.

import { createReadStream, createWriteStream } from 'node:fs'
import { stat as localStat } from 'node:fs/promises'
import { StringDecoder } from 'node:string_decoder'
import type { EventPayload, ServiceClient } from '../protocol/contract.ts'
import { ErrorNames, VtError } from '../protocol/errors.ts'
import type { ExecResult } from '../protocol/exec.ts'
import type { HostFacts } from '../protocol/facts.ts'
import type { FileStat } from '../protocol/files.ts'
import type { ServiceName, Services } from '../protocol/registry.ts'
import type { ProcessInfo } from '../protocol/spawn.ts'
import { STREAM_CHUNK_BYTES } from '../protocol/wire.ts'
import { apiStep, commandTitle } from '../runner/apiStep.ts'
import type { AgentClient, ServiceEventName } from './client.ts'

export interface ExecOptions {
  env?: Record<string, string>
  clearEnv?: boolean
  cwd?: string
  /** Milliseconds until the process tree is killed. Default 10 minutes; 0 for none. */
  timeout?: number
  stdin?: string | Uint8Array
  /** Called with output as it arrives. */
  onStdout?: (chunk: string) => void
  onStderr?: (chunk: string) => void
  /** Aborting kills the process tree. */
  signal?: AbortSignal
  maxBuffer?: number
}

export interface ExecOutput {
  exitCode: number | null
  signal: string | null
  stdout: string
  stderr: string
  timedOut: boolean
  canceled: boolean
  truncated: boolean
  durationMs: number
}

/** `succeed()` saw a non-zero exit (or a signal, or a timeout). */
export class ExecFailedError extends VtError {
  constructor(
    override readonly host: string,
    readonly command: string,
    readonly result: ExecOutput,
  ) {
    const how = result.timedOut
      ? 'timed out'
      : result.signal
        ? `was killed by ${result.signal}`
        : `exited with code ${result.exitCode}`
    const tail = (result.stderr || result.stdout).trim().split('\n').slice(-10).join('\n')
    super('ExecFailedError', `${host}: \`${command}\` ${how}${tail ? `:\n${tail}` : ''}`, { code: 'EXEC_FAILED' })
  }
}

let execCounter = 0

function commandText(command: string | string[]): string {
  return Array.isArray(command) ? command.join(' ') : command
}

export class HostProcess {
  constructor(
    private readonly host: Host,
    readonly info: ProcessInfo,
  ) {}
  get id(): string {
    return this.info.id
  }
  get pid(): number {
    return this.info.pid
  }
  /** Signals the process group (default SIGTERM). */
  kill(signal?: string): Promise<boolean> {
    return this.host.client.service('spawn').kill(this.info.id, signal)
  }
  /** Waits for exit; null when still running after `timeoutMs`. */
  wait(timeoutMs?: number): Promise<ProcessInfo | null> {
    return this.host.client.service('spawn').wait(this.info.id, timeoutMs)
  }
  async logs(stream: 'stdout' | 'stderr' = 'stdout'): Promise<string> {
    const { data } = await this.host.client.service('spawn').logs(this.info.id, { stream, maxBytes: 64 * 1024 * 1024 })
    return Buffer.from(data).toString('utf8')
  }
}

export class HostFiles {
  constructor(private readonly host: Host) {}

  private get rpc() {
    return this.host.client.service('files')
  }

  stat(path: string): Promise<FileStat | null> {
    return this.rpc.stat(path)
  }
  list(path: string): Promise<FileStat[]> {
    return this.rpc.list(path)
  }
  mkdir(path: string, options?: { mode?: number; keep?: boolean }): Promise<void> {
    return this.rpc.mkdir(path, options)
  }
  remove(path: string, options?: { recursive?: boolean }): Promise<boolean> {
    return this.rpc.remove(path, options)
  }
  async read(path: string): Promise<string> {
    return Buffer.from(await this.get(path)).toString('utf8')
  }

  /** Writes `data` to `path` (atomically). Removed with the session unless `keep`. */
  async put(
    path: string,
    data: string | Uint8Array,
    options: { mode?: number; mkdirs?: boolean; keep?: boolean } = {},
  ): Promise<FileStat> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    if (bytes.length <= STREAM_CHUNK_BYTES) return this.rpc.write(path, bytes, options)
    return this.putChunks(path, options, async send => {
      for (let off = 0; off < bytes.length; off += STREAM_CHUNK_BYTES) {
        await send(bytes.subarray(off, Math.min(off + STREAM_CHUNK_BYTES, bytes.length)))
      }
    })
  }

  /** Copies a local file to the host. */
  async upload(local: string, remote: string, options: { mode?: number; mkdirs?: boolean; keep?: boolean } = {}) {
    const mode = options.mode ?? (await localStat(local)).mode & 0o777
    return this.putChunks(remote, { ...options, mode }, async send => {
      for await (const chunk of createReadStream(local, { highWaterMark: STREAM_CHUNK_BYTES })) await send(chunk)
    })
  }

  private async putChunks(
    path: string,
    options: { mode?: number; mkdirs?: boolean; keep?: boolean },
    produce: (send: (chunk: Uint8Array) => Promise<void>) => Promise<void>,
  ): Promise<FileStat> {
    const client = this.host.client
    const stream = client.newStream()
    await this.rpc.openWrite(path, { stream, ...options })
    try {
      await produce(chunk => client.sendChunk(stream, chunk))
      await client.flush()
    } catch (e) {
      await this.rpc.abort(stream).catch(() => {})
      throw e
    }
    return this.rpc.commit(stream)
  }

  /** Reads a whole file. */
  async get(path: string): Promise<Buffer> {
    const parts: Buffer[] = []
    await this.readStream(path, chunk => parts.push(chunk)) // ws hands over fresh buffers: no copy
    return Buffer.concat(parts)
  }

  /** Copies a file from the host to a local path. */
  async download(remote: string, local: string): Promise<number> {
    const out = createWriteStream(local)
    let pending = Promise.resolve()
    try {
      const size = await this.readStream(remote, chunk => {
        if (!out.write(chunk)) pending = new Promise(r => out.once('drain', () => r()))
      })
      await pending
      return size
    } finally {
      await new Promise<void>(resolve => out.end(() => resolve()))
    }
  }

  private async readStream(path: string, sink: (chunk: Buffer) => void): Promise<number> {
    const client = this.host.client
    let aborted: Error | undefined
    const stream = client.newStream(sink, e => {
      aborted = e
    })
    try {
      const { size } = await this.rpc.read(path, { stream })
      if (aborted) throw aborted
      return size
    } finally {
      client.endStream(stream)
    }
  }
}

export class Host {
  readonly files: HostFiles
  constructor(
    readonly client: AgentClient,
    readonly url: string,
    private readonly configLabels: Record<string, string> = {},
    private readonly configAddress?: string,
  ) {
    this.files = new HostFiles(this)
  }

  get name(): string {
    return this.client.host
  }
  /** The address other hosts and the controller reach this host at. */
  get address(): string {
    return this.configAddress ?? this.client.facts.address ?? new URL(this.url).hostname
  }
  get facts(): HostFacts {
    return this.client.facts
  }
  get labels(): Record<string, string> {
    return { ...this.client.facts.labels, ...this.configLabels }
  }

  /** Fresh facts (memory and disk now). */
  async refreshFacts(): Promise<HostFacts> {
    const facts = await this.client.service('facts').get()
    this.client.facts = facts
    return facts
  }

  /** Typed access to any service: `host.service('vm').start(spec)`. */
  service<N extends ServiceName>(name: N): ServiceClient<Services[N]> {
    return this.client.service(name)
  }

  /** Subscribes to a service's events (payload typed by the service's contract); returns the unsubscribe. */
  on<N extends ServiceName, E extends ServiceEventName<N>>(
    service: N,
    event: E,
    listener: (payload: EventPayload<Services[N], E>) => void,
  ): () => void {
    return this.client.on(service, event, listener)
  }

  /** Runs a command (a shell string, or argv without a shell) and returns its exit status and output. */
  exec(command: string | string[], options: ExecOptions = {}): Promise<ExecOutput> {
    return apiStep(`${this.name}: exec ${commandTitle(command)}`, () => this.run(command, options))
  }

  private async run(command: string | string[], options: ExecOptions): Promise<ExecOutput> {
    const id = `x${++execCounter}-${process.pid}`
    const stream = Boolean(options.onStdout || options.onStderr)
    // One decoder per stream: a UTF-8 character split across two chunks is still decoded whole.
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') }
    const off = stream
      ? this.client.on('exec', 'output', e => {
          if (e.id !== id) return
          const text = decoders[e.stream].write(Buffer.from(e.data))
          if (!text) return
          if (e.stream === 'stdout') options.onStdout?.(text)
          else options.onStderr?.(text)
        })
      : undefined
    const onAbort = () =>
      void this.client
        .service('exec')
        .cancel(id)
        .catch(() => {})
    if (options.signal?.aborted) throw new VtError(ErrorNames.badRequest, 'exec aborted before it started')
    options.signal?.addEventListener('abort', onAbort)
    try {
      const r: ExecResult = await this.client.service('exec').run({
        ...(Array.isArray(command) ? { argv: command } : { command }),
        env: options.env,
        clearEnv: options.clearEnv,
        cwd: options.cwd,
        stdin: options.stdin,
        timeoutMs: options.timeout,
        maxBuffer: options.maxBuffer,
        id,
        stream,
      })
      return {
        exitCode: r.exitCode,
        signal: r.signal,
        stdout: Buffer.from(r.stdout).toString('utf8'),
        stderr: Buffer.from(r.stderr).toString('utf8'),
        timedOut: r.timedOut,
        canceled: r.canceled,
        truncated: r.truncated,
        durationMs: r.durationMs,
      }
    } finally {
      off?.()
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  /** Runs a command that must succeed; returns its stdout. */
  succeed(command: string | string[], options: ExecOptions = {}): Promise<string> {
    return apiStep(`${this.name}: succeed ${commandTitle(command)}`, async () => {
      const r = await this.run(command, options)
      if (r.exitCode !== 0) throw new ExecFailedError(this.name, commandText(command), r)
      return r.stdout
    })
  }

  /** Runs a command that must fail; returns its stderr. */
  fail(command: string | string[], options: ExecOptions = {}): Promise<string> {
    return apiStep(`${this.name}: fail ${commandTitle(command)}`, async () => {
      const r = await this.run(command, options)
      if (r.exitCode === 0) {
        throw new VtError(
          'ExecSucceededError',
          `${this.name}: \`${commandText(command)}\` was expected to fail but exited 0`,
        )
      }
      return r.stderr
    })
  }

  /** Starts a long-running process; it is killed with the session unless it exits first. */
  async spawn(
    command: string | string[],
    options: { env?: Record<string, string>; cwd?: string; name?: string } = {},
  ): Promise<HostProcess> {
    const info = await this.client.service('spawn').start({
      ...(Array.isArray(command) ? { argv: command } : { command }),
      env: options.env,
      cwd: options.cwd,
      name: options.name,
    })
    return new HostProcess(this, info)
  }

  /** Agent log lines in a time window (for attaching to a failed test). */
  log(sinceMs?: number, untilMs?: number): Promise<string> {
    return this.client.service('session').log({ sinceMs, untilMs })
  }

  close(): Promise<void> {
    return this.client.close()
  }

  toString(): string {
    return `Host(${this.name} ${this.address})`
  }
}
