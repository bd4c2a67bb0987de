// `vt agent`'s lifecycle: checks its options, takes the state dir's lock, reaps a previous run's leftovers, sets up
// the services, listens (plain WebSocket on loopback, TLS elsewhere unless --insecure) and stops, reaping every
// session. Each connection is an agent/connection.ts; agent/bind.ts binds the contracts to the services.
import { createHash, timingSafeEqual } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { isIP } from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { WebSocketServer } from 'ws'
import { ErrorNames, VtError } from '../src/protocol/errors.ts'
import type { HostFacts } from '../src/protocol/facts.ts'
import type { ServiceName } from '../src/protocol/registry.ts'
import { encodeStreamChunk, HELLO_TIMEOUT_MS, MAX_FRAME_BYTES, MAX_TOKEN_CHARS } from '../src/protocol/wire.ts'
import { machineCapacity } from '../src/util/capacity.ts'
import { isLoopbackHost } from '../src/util/loopback.ts'
import { isSameProcess, startTimeOf } from '../src/util/proc.ts'
import { type BoundModule, bindSession, type SessionBinding } from './bind.ts'
import { CapacityLedger } from './capacity.ts'
import { joinCgroup, plannedCgroup } from './cgroup.ts'
import { Connection, type ConnectionHost } from './connection.ts'
import { collectFacts, type StaticFacts, staticFacts } from './facts.ts'
import { connectionKey, Gate, type GateLimits } from './gate.ts'
import { type Keeper, startKeeper } from './keeper.ts'
import { createLogger } from './log.ts'
import { Roots } from './roots.ts'
import type { AgentContext, Logger, ServiceModule, SessionFactory } from './service.ts'
import { serviceModules } from './services/index.ts'
import { type Session, SessionStore } from './sessions.ts'

export const AGENT_VERSION = '0.1.0'

export interface AgentOptions {
  /** Address to listen on; loopback by default. Port 0 picks a free one. */
  host?: string
  port?: number
  token: string
  /** PEM file paths. With `ca`, clients must present a certificate signed by it. */
  tls?: { cert: string; key: string; ca?: string }
  /** Allow a non-loopback address without TLS. */
  insecure?: boolean
  stateDir: string
  name?: string
  labels?: Record<string, string>
  /** Directories the files service may touch; default <state-dir>/files. */
  roots?: string[]
  /** Longest lease a controller may ask for. */
  maxLeaseSeconds?: number
  /** Capacity offered to reservations and VMs; defaults to the whole machine (memory, 16 vCPUs per core). */
  capacity?: { memoryBytes?: number; cpus?: number }
  /** Log only to the state dir's agent.log (not stderr). */
  quiet?: boolean
  /** Address the controller should use when it differs from the listen address (e.g. 0.0.0.0). */
  advertise?: string
  /**
   * A dedicated `vt agent` process: move into a cgroup of its own (where possible) whose every process dies when
   * the agent exits. Never for an agent running inside another program (it would kill that program).
   */
  ownCgroup?: boolean
  /** Refuse exec, spawn, raw QEMU arguments, exec: migration URIs and HMP (for shared labs). */
  confined?: boolean
  /** Limits on connections that have not authenticated yet (agent/gate.ts). */
  limits?: Partial<GateLimits>
}

/** Services a confined agent refuses outright: they run host commands by design. */
const CONFINED_SERVICES = new Set<ServiceName>(['exec', 'spawn'])

export const DEFAULT_GATE_LIMITS: GateLimits = {
  perAgent: 128,
  perPeer: 32,
  // Longer than the WebSocket-level hello timeout, which answers a WebSocket peer with a reason first.
  deadlineMs: HELLO_TIMEOUT_MS + 1000,
  maxBytes: 64 * 1024,
}

export interface RunningAgent {
  url: string
  host: string
  port: number
  name: string
  stateDir: string
  log: Logger
  /** How many leftover resources of a previous run were reaped at start. */
  reapedAtStart: number
  stop(): Promise<void>
}

export class Agent implements ConnectionHost {
  readonly store: SessionStore
  private readonly bindings = new Map<string, SessionBinding>()
  readonly log: Logger
  readonly name: string
  readonly token: string
  readonly maxLeaseSeconds: number
  readonly roots: Roots
  readonly context: AgentContext
  private modules: BoundModule[] = []
  private factProviders: (() => Promise<Partial<HostFacts>> | Partial<HostFacts>)[] = []
  private base?: StaticFacts
  private readonly startedAt = Date.now()
  address = ''
  private server?: HttpServer
  private wss?: WebSocketServer
  readonly capacity: CapacityLedger
  readonly gate: Gate

  constructor(readonly options: AgentOptions) {
    this.name = options.name ?? os.hostname()
    this.token = options.token
    this.maxLeaseSeconds = options.maxLeaseSeconds ?? 3600
    const machine = machineCapacity()
    this.capacity = new CapacityLedger(this.name, {
      memoryBytes: options.capacity?.memoryBytes ?? machine.memoryBytes,
      cpus: options.capacity?.cpus ?? machine.cpus,
    })
    mkdirSync(options.stateDir, { recursive: true, mode: 0o700 })
    this.log = createLogger(join(options.stateDir, 'agent.log'), { quiet: options.quiet })
    const roots = options.roots?.length ? options.roots : [join(options.stateDir, 'files')]
    if (!options.roots?.length) mkdirSync(roots[0], { recursive: true })
    this.roots = new Roots(roots)
    this.store = new SessionStore(options.stateDir, this.log)
    this.gate = new Gate({ ...DEFAULT_GATE_LIMITS, ...options.limits }, this.log)
    this.context = {
      name: this.name,
      stateDir: options.stateDir,
      roots: this.roots.real,
      confined: options.confined ?? false,
      labels: options.labels ?? {},
      capacity: this.capacity,
      log: this.log,
      facts: () => this.facts(),
      registerReaper: (kind, reaper) => this.store.registerReaper(kind, reaper),
      addFacts: provider => {
        this.factProviders.push(provider)
      },
      peerSession: (id, secret) => {
        const session = this.store.sessions.get(id)
        if (!session || session.closed || !sameSecret(secret, session.secret)) return undefined
        return { id: session.id, dir: session.dir }
      },
      sendStream: (sessionId, stream, chunk) => this.sendFrame(sessionId, encodeStreamChunk(stream, chunk)),
      sendStreamFrame: (sessionId, frame) => this.sendFrame(sessionId, frame),
      onStream: (sessionId, stream, sink) => {
        const state = this.bindings.get(sessionId)
        if (!state) throw new Error(`session ${sessionId} is gone`)
        state.streams.set(stream, sink)
        return () => {
          if (state.streams.get(stream) === sink) state.streams.delete(stream)
        }
      },
    }
  }

  async facts(): Promise<HostFacts> {
    this.base ??= await staticFacts()
    return collectFacts(
      this.base,
      {
        name: this.name,
        stateDir: this.options.stateDir,
        labels: this.options.labels ?? {},
        roots: this.roots.real,
        address: this.address,
        version: AGENT_VERSION,
        startedAt: this.startedAt,
        confined: this.options.confined,
      },
      this.factProviders,
    )
  }

  bind(session: Session): SessionBinding {
    const binding = bindSession(this.name, session, this.modules, this.options.confined ? CONFINED_SERVICES : undefined)
    this.bindings.set(session.id, binding)
    session.onClose(() => {
      this.bindings.delete(session.id)
    })
    return binding
  }

  authenticated(remote: string): void {
    this.gate.authenticated(remote)
  }

  binding(sessionId: string): SessionBinding | undefined {
    return this.bindings.get(sessionId)
  }

  private async sendFrame(sessionId: string, frame: Buffer): Promise<void> {
    const conn = this.store.sessions.get(sessionId)?.connection
    if (!conn) {
      throw new VtError(ErrorNames.connectionLost, 'the controller is not connected', { code: 'CONNECTION_LOST' })
    }
    try {
      await conn.sendFrame(frame)
    } catch (e) {
      throw new VtError(ErrorNames.connectionLost, `the controller is not connected (${(e as Error).message})`, {
        code: 'CONNECTION_LOST',
      })
    }
  }

  async start(): Promise<RunningAgent> {
    const { options } = this
    const host = options.host ?? '127.0.0.1'
    if (!isLoopbackHost(host) && !options.tls && !options.insecure) {
      throw new Error(
        `refusing to listen on ${host} without TLS: give --tls-cert and --tls-key, or --insecure on a network you trust`,
      )
    }
    if (!options.token || options.token.length < 16) {
      throw new Error('the agent token must have at least 16 characters (give --token-file or --token-env)')
    }
    if (options.token.length > MAX_TOKEN_CHARS) {
      throw new Error(
        `the agent token has ${options.token.length} characters, more than the ${MAX_TOKEN_CHARS} a controller can send: use a shorter token`,
      )
    }
    scrubEnvironment(options.token)
    await this.lock()
    const cgroup = options.ownCgroup ? plannedCgroup() : undefined
    this.keeper = startKeeper(options.stateDir, cgroup)
    if (cgroup) joinCgroup(cgroup, why => this.log.warn(why))
    for (const module of Object.values(serviceModules) as ServiceModule[]) {
      this.modules.push({ module, factory: (await module.setup(this.context)) as SessionFactory<ServiceName> })
    }
    // After the setups: services register the reapers of their kinds (faults, networks, taps) there.
    const reapedAtStart = await this.store.reapLeftovers()
    if (reapedAtStart) this.log.info('reaped leftovers of a previous run', { resources: reapedAtStart })
    this.server = options.tls
      ? createHttpsServer({
          cert: readFileSync(options.tls.cert),
          key: readFileSync(options.tls.key),
          ...(options.tls.ca ? { ca: readFileSync(options.tls.ca), requestCert: true, rejectUnauthorized: true } : {}),
        })
      : createHttpServer()
    // Plain TCP first (for TLS too): an unauthenticated peer is admitted under the caps, with a deadline.
    this.server.on('connection', socket => this.gate.admit(socket))
    this.server.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' })
      res.end('vt agent: connect with a WebSocket\n')
    })
    this.wss = new WebSocketServer({
      server: this.server,
      maxPayload: MAX_FRAME_BYTES + 1024,
      perMessageDeflate: false,
    })
    // The WebSocketServer repeats the HTTP server's errors, which are handled (and logged) on the server itself.
    this.wss.on('error', () => {})
    this.wss.on('connection', (ws, req: IncomingMessage) => {
      const remote = connectionKey(req.socket)
      this.gate.watch(req.socket, remote)
      new Connection(this, ws, remote)
    })
    try {
      await new Promise<void>((resolve, reject) => {
        this.server?.once('error', reject)
        this.server?.listen(options.port ?? 0, host, () => resolve())
      })
    } catch (e) {
      await this.stop()
      throw listenError(e as NodeJS.ErrnoException, host, options.port ?? 0)
    }
    this.server.on('error', e => this.log.error('server error', { error: String(e) }))
    const port = (this.server.address() as AddressInfo).port
    const advertised = options.advertise ?? host
    const hostPart = isIP(advertised) === 6 ? `[${advertised}]` : advertised
    this.address = advertised
    const url = `${options.tls ? 'wss' : 'ws'}://${hostPart}:${port}`
    this.store.startLeaseClock()
    this.log.info('agent listening', { url, name: this.name, stateDir: options.stateDir, roots: this.roots.real })
    return {
      url,
      host,
      port,
      name: this.name,
      stateDir: options.stateDir,
      log: this.log,
      reapedAtStart,
      stop: () => this.stop(),
    }
  }

  private stopping?: Promise<void>
  private keeper?: Keeper

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('agent stopping')
      for (const client of this.wss?.clients ?? []) client.close(1001, 'agent stopping')
      this.wss?.close()
      await new Promise<void>(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
      await this.store.closeAll('agent stopping')
      for (const { module } of this.modules) await module.shutdown?.()
      rmSync(join(this.options.stateDir, 'agent.lock'), { force: true })
      this.keeper?.release()
      this.log.info('agent stopped')
    })()
    return this.stopping
  }

  /**
   * One agent per state dir: a second one would reap the first one's sessions. A keeper reaping after a dead
   * agent holds the lock for a moment (marked `reaper`): wait for it rather than fail.
   */
  private async lock(): Promise<void> {
    const file = join(this.options.stateDir, 'agent.lock')
    for (let waited = 0; ; waited += 50) {
      let other: { pid: number; startTime: number; reaper?: boolean } | undefined
      try {
        other = JSON.parse(readFileSync(file, 'utf8'))
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && !(e instanceof SyntaxError)) throw e
      }
      if (!other || other.pid === process.pid || !isSameProcess(other.pid, other.startTime)) break
      if (!other.reaper) throw new Error(`another agent (pid ${other.pid}) uses state dir ${this.options.stateDir}`)
      if (waited > 30_000) throw new Error(`the keeper (pid ${other.pid}) reaping ${this.options.stateDir} is stuck`)
      await new Promise(r => setTimeout(r, 50))
    }
    writeFileSync(file, JSON.stringify({ pid: process.pid, startTime: startTimeOf(process.pid) }))
  }
}

/**
 * Removes the token from this process's environment (the variable --token-env named, and any other holding
 * it): every command, spawn and QEMU the agent starts inherits that environment, and a test printing `env`
 * would put the token into its reports.
 */
function scrubEnvironment(token: string): void {
  for (const [name, value] of Object.entries(process.env)) if (value?.includes(token)) delete process.env[name]
}

function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(given), digest(expected))
}

function listenError(e: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`
  const why: Record<string, string> = {
    EADDRINUSE: 'the port is in use (another agent or program listens there): stop it or give another --listen port',
    EADDRNOTAVAIL: 'no interface of this machine has that address: give one of its addresses to --listen',
    EACCES: 'permission denied (ports below 1024 need root): give a port of 1024 or more to --listen',
    ENOTFOUND: 'the name does not resolve: give an IP address to --listen',
  }
  return new Error(`cannot listen on ${where}: ${why[e.code ?? ''] ?? e.message}`)
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  return new Agent(options).start()
}
