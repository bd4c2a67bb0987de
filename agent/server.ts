// `vt agent`'s server: a WebSocket endpoint (plain on loopback, TLS elsewhere unless --insecure) where every
// connection must authenticate with its first frame before any service is reachable. After the handshake the
// connection carries birpc calls into the session's services and binary stream chunks.
import { createHash, timingSafeEqual } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { isIP } from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { type BirpcReturn, createBirpc } from 'birpc'
import { type WebSocket, WebSocketServer } from 'ws'
import { z } from 'zod'
import { methodName } from '../src/protocol/contract.ts'
import { type ErrorData, ErrorNames, toErrorData, VtError } from '../src/protocol/errors.ts'
import type { HostFacts } from '../src/protocol/facts.ts'
import { services as contracts, type ServiceName } from '../src/protocol/registry.ts'
import {
  type ControllerFunctions,
  checkRpcFrame,
  decodeJson,
  decodeStreamChunk,
  encodeJson,
  encodeStreamChunk,
  HELLO_TIMEOUT_MS,
  MAX_FRAME_BYTES,
  type Notice,
  PROTOCOL_VERSION,
  type Refused,
  type Welcome,
} from '../src/protocol/wire.ts'
import { collectFacts, type StaticFacts, staticFacts } from './facts.ts'
import { createLogger } from './log.ts'
import { isSameProcess, startTimeOf } from './proc.ts'
import { Roots } from './roots.ts'
import type { AgentContext, Logger, ServiceModule, ServiceSession, SessionFactory } from './service.ts'
import { serviceModules } from './services/index.ts'
import { SESSION, type Session, type SessionConnection, SessionStore } from './sessions.ts'

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
  /** Capacity offered to reservations; defaults to the machine's memory and cores. */
  capacity?: { memoryBytes?: number; cpus?: number }
  /** Log only to the state dir's agent.log (not stderr). */
  quiet?: boolean
  /** Address the controller should use when it differs from the listen address (e.g. 0.0.0.0). */
  advertise?: string
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

const helloSchema = z.strictObject({
  t: z.literal('hello'),
  protocol: z.number(),
  token: z.string().max(4096),
  client: z.strictObject({ name: z.string().max(200), pid: z.number() }),
  leaseSeconds: z.number().positive().max(86_400).optional(),
  resume: z.strictObject({ session: z.string().max(64), secret: z.string().max(128) }).optional(),
})

const DEFAULT_LEASE_SECONDS = 30

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host)
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected))
}

type Rpc = BirpcReturn<ControllerFunctions, Record<string, never>>

interface SessionState {
  session: Session
  functions: Map<string, (...args: unknown[]) => Promise<unknown>>
  streams: Map<number, (chunk: Buffer) => void | Promise<void>>
}

/** One WebSocket. Attached to a session after the handshake. */
class Connection implements SessionConnection {
  state?: SessionState
  rpc?: Rpc
  private onRpcMessage?: (data: unknown) => unknown
  private helloTimer?: NodeJS.Timeout

  constructor(
    readonly agent: Agent,
    readonly ws: WebSocket,
    readonly remote: string,
  ) {
    this.helloTimer = setTimeout(
      () => this.refuse(ErrorNames.auth, 'AUTH', 'no handshake within 5 s'),
      HELLO_TIMEOUT_MS,
    )
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary))
    ws.on('ping', () => this.state?.session.touch())
    ws.on('close', () => this.onClose())
    ws.on('error', e => agent.log.warn('connection error', { remote, error: e.message }))
  }

  congested(): boolean {
    return this.ws.bufferedAmount > 8 * 1024 * 1024
  }

  close(reason: string): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) {
      this.ws.close(4000, reason.slice(0, 100))
    }
  }

  private onClose(): void {
    clearTimeout(this.helloTimer)
    this.rpc?.$close(new Error('connection closed'))
    const state = this.state
    if (state && state.session.connection === this && !state.session.closed) {
      state.session.connection = undefined
      this.agent.log.info('controller disconnected; session kept for its lease', {
        session: state.session.id,
        leaseMs: state.session.remainingMs(),
      })
    }
  }

  private send(frame: unknown): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encodeJson(frame))
  }

  refuse(name: string, code: string, message: string, extra: Record<string, unknown> = {}): void {
    clearTimeout(this.helloTimer)
    this.agent.log.warn('refused connection', { remote: this.remote, reason: message, ...extra })
    const frame: Refused = { t: 'refused', error: { name, message, code, host: this.agent.name } }
    this.send(frame)
    this.ws.close(4001, message.slice(0, 100))
  }

  private notice(message: string): void {
    const frame: Notice = {
      t: 'error',
      error: { name: ErrorNames.badRequest, message, code: 'BAD_FRAME', host: this.agent.name },
    }
    this.send(frame)
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    try {
      if (!this.state) {
        void this.handshake(data, isBinary)
        return
      }
      this.state.session.touch()
      if (isBinary) {
        const decoded = decodeStreamChunk(data)
        const sink = decoded && this.state.streams.get(decoded.stream)
        if (decoded && sink) this.feed(sink, decoded.chunk)
        else this.notice(`binary frame for no open stream (${decoded?.stream ?? 'short frame'})`)
        return
      }
      let frame: unknown
      try {
        frame = decodeJson(data.toString('utf8'))
      } catch (e) {
        this.notice(`frame is not valid JSON: ${(e as Error).message.slice(0, 200)}`)
        return
      }
      const bad = checkRpcFrame(frame)
      if (bad) {
        const f = frame as Record<string, unknown> | null
        if (f && typeof f === 'object' && f.t === 'q' && typeof f.i === 'string' && f.i.length <= 64) {
          const error: ErrorData = {
            name: ErrorNames.badRequest,
            message: bad,
            code: 'BAD_FRAME',
            host: this.agent.name,
          }
          this.send({ t: 's', i: f.i, e: error })
        } else this.notice(bad)
        return
      }
      Promise.resolve(this.onRpcMessage?.(frame)).catch(e =>
        this.agent.log.warn('rpc message failed', { remote: this.remote, error: String(e) }),
      )
    } catch (e) {
      // Nothing a peer sends may take the agent down.
      this.agent.log.error('unexpected error handling a frame', { remote: this.remote, error: String(e) })
    }
  }

  private pendingChunks = 0

  /** Hands a chunk to its sink; stops reading the socket while more than 8 async sinks are pending. */
  private feed(sink: (chunk: Buffer) => void | Promise<void>, chunk: Buffer): void {
    const pending = sink(chunk)
    if (!pending) return
    this.pendingChunks++
    if (this.pendingChunks > 8 && !this.ws.isPaused) this.ws.pause()
    pending
      .catch(() => {}) // the sink records its own errors
      .finally(() => {
        this.pendingChunks--
        if (this.pendingChunks <= 2 && this.ws.isPaused) this.ws.resume()
      })
  }

  private async handshake(data: Buffer, isBinary: boolean): Promise<void> {
    try {
      await this.handshakeSteps(data, isBinary)
    } catch (e) {
      this.agent.log.error('handshake failed', { remote: this.remote, error: String(e) })
      this.refuse(
        ErrorNames.internal,
        'INTERNAL',
        `the agent could not complete the handshake: ${(e as Error).message}`,
      )
    }
  }

  private async handshakeSteps(data: Buffer, isBinary: boolean): Promise<void> {
    clearTimeout(this.helloTimer)
    this.helloTimer = undefined
    // Placeholder state so that frames arriving while we answer are not taken as a second hello.
    const pending = { session: { touch() {} } } as unknown as SessionState
    this.state = pending
    if (isBinary) return this.refuse(ErrorNames.auth, 'AUTH', 'first frame must be the hello handshake (got binary)')
    let parsed: z.infer<typeof helloSchema>
    try {
      const raw = decodeJson(data.toString('utf8')) as { protocol?: unknown }
      const result = helloSchema.safeParse(raw)
      if (!result.success) {
        if (raw && typeof raw === 'object' && typeof raw.protocol === 'number' && raw.protocol !== PROTOCOL_VERSION) {
          return this.versionMismatch(raw.protocol)
        }
        return this.refuse(ErrorNames.auth, 'AUTH', 'first frame must be the hello handshake with a token')
      }
      parsed = result.data
    } catch {
      return this.refuse(ErrorNames.auth, 'AUTH', 'first frame must be the hello handshake (invalid JSON)')
    }
    if (!sameSecret(parsed.token, this.agent.token)) {
      return this.refuse(ErrorNames.auth, 'AUTH', 'wrong token', { client: parsed.client.name })
    }
    if (parsed.protocol !== PROTOCOL_VERSION) return this.versionMismatch(parsed.protocol)
    const facts = await this.agent.facts()

    let session: Session
    let resumed = false
    if (parsed.resume) {
      const existing = this.agent.store.sessions.get(parsed.resume.session)
      if (!existing || existing.closed || !sameSecret(parsed.resume.secret, existing.secret)) {
        return this.refuse(
          ErrorNames.sessionExpired,
          'SESSION_EXPIRED',
          `session ${parsed.resume.session} cannot be resumed: its lease expired and its resources were reaped`,
        )
      }
      existing.connection?.close('replaced by a new connection')
      session = existing
      resumed = true
    } else {
      const leaseSeconds = Math.min(parsed.leaseSeconds ?? DEFAULT_LEASE_SECONDS, this.agent.maxLeaseSeconds)
      session = this.agent.store.create(leaseSeconds * 1000)
    }
    const state = resumed ? this.agent.states.get(session.id) : this.agent.openSession(session)
    if (!state) return this.refuse(ErrorNames.sessionExpired, 'SESSION_EXPIRED', 'session state is gone')
    session.touch()
    session.connection = this
    this.state = state
    this.rpc = createBirpc<ControllerFunctions, Record<string, never>>(Object.create(null), {
      post: frame => this.ws.send(frame),
      on: fn => {
        this.onRpcMessage = fn
      },
      serialize: encodeJson,
      deserialize: frame => frame,
      eventNames: ['event'],
      timeout: -1,
      // Unknown names (including '__proto__', 'constructor', ...) answer a BadRequestError as data.
      resolver: name => state.functions.get(name) ?? unknownMethod(this.agent.name, name),
      onGeneralError: e => {
        this.agent.log.warn('rpc error', { session: session.id, error: e.message })
        return true
      },
    })
    const welcome: Welcome = {
      t: 'welcome',
      protocol: PROTOCOL_VERSION,
      host: this.agent.name,
      session: { id: session.id, secret: session.secret, leaseSeconds: session.leaseMs / 1000, resumed },
      facts,
      services: Object.keys(contracts),
    }
    this.send(welcome)
    this.agent.log.info(resumed ? 'session resumed' : 'session opened', {
      session: session.id,
      remote: this.remote,
      client: parsed.client.name,
      clientPid: parsed.client.pid,
      leaseMs: session.leaseMs,
    })
  }

  private versionMismatch(theirs: number): void {
    this.refuse(
      ErrorNames.protocolVersion,
      'PROTOCOL_VERSION',
      `protocol version mismatch: the controller speaks version ${theirs}, this agent speaks version ${PROTOCOL_VERSION}; run the same vt version on both sides`,
    )
  }
}

export class Agent {
  readonly store: SessionStore
  readonly states = new Map<string, SessionState>()
  readonly log: Logger
  readonly name: string
  readonly token: string
  readonly maxLeaseSeconds: number
  readonly roots: Roots
  readonly context: AgentContext
  private factories: { module: ServiceModule; factory: SessionFactory<ServiceName> }[] = []
  private factProviders: (() => Promise<Partial<HostFacts>> | Partial<HostFacts>)[] = []
  private base?: StaticFacts
  private readonly startedAt = Date.now()
  address = ''
  private server?: HttpServer
  private wss?: WebSocketServer
  readonly capacity: { memoryBytes?: number; cpus?: number }

  constructor(readonly options: AgentOptions) {
    this.name = options.name ?? os.hostname()
    this.token = options.token
    this.maxLeaseSeconds = options.maxLeaseSeconds ?? 3600
    this.capacity = options.capacity ?? {}
    mkdirSync(options.stateDir, { recursive: true, mode: 0o700 })
    this.log = createLogger(join(options.stateDir, 'agent.log'), { quiet: options.quiet })
    const roots = options.roots?.length ? options.roots : [join(options.stateDir, 'files')]
    if (!options.roots?.length) mkdirSync(roots[0], { recursive: true })
    this.roots = new Roots(roots)
    this.store = new SessionStore(options.stateDir, this.log)
    this.context = {
      name: this.name,
      stateDir: options.stateDir,
      roots: this.roots.real,
      labels: options.labels ?? {},
      capacity: this.capacity,
      log: this.log,
      facts: () => this.facts(),
      registerReaper: (kind, reaper) => this.store.registerReaper(kind, reaper),
      addFacts: provider => {
        this.factProviders.push(provider)
      },
      sendStream: (sessionId, stream, chunk) => this.sendFrame(sessionId, encodeStreamChunk(stream, chunk)),
      sendStreamFrame: (sessionId, frame) => this.sendFrame(sessionId, frame),
      onStream: (sessionId, stream, sink) => {
        const state = this.states.get(sessionId)
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
      },
      this.factProviders,
    )
  }

  openSession(session: Session): SessionState {
    const functions = new Map<string, (...args: unknown[]) => Promise<unknown>>()
    const state: SessionState = { session, functions, streams: new Map() }
    for (const { module, factory } of this.factories) {
      const name = module.name
      const contract = contracts[name]
      const serviceSession: ServiceSession<typeof name> = {
        id: session.id,
        dir: session.dir,
        signal: session.signal,
        log: session.log,
        track: r => session.track(r),
        untrack: (id, o) => session.untrack(id, o),
        onClose: fn => session.onClose(fn),
        congested: () => session.congested(),
        emit: (event, payload) => {
          const rpc = (session.connection as Connection | undefined)?.rpc
          if (rpc && !rpc.$closed) rpc.$callEvent('event', name, event, payload).catch(() => {})
        },
      }
      ;(serviceSession as unknown as { [SESSION]: Session })[SESSION] = session
      const impl = factory(serviceSession as never) as Record<string, (...args: unknown[]) => unknown>
      for (const [fn, spec] of Object.entries(contract.calls)) {
        const implFn = impl[fn]
        if (typeof implFn !== 'function') throw new Error(`service ${name} does not implement ${fn}`)
        const where = { host: this.name, service: name, call: fn }
        functions.set(methodName(name, fn), async (...args: unknown[]) => {
          if (session.closed) {
            throw toErrorData(
              new VtError(ErrorNames.sessionExpired, `session ${session.id} is closed`, { code: 'SESSION_EXPIRED' }),
              where,
            )
          }
          // null and undefined are the same for an argument (JSON cannot carry undefined in a list).
          const parsed = spec.args.safeParse(args.map(a => (a === null ? undefined : a)))
          if (!parsed.success) {
            const detail = parsed.error.issues
              .slice(0, 5)
              .map(
                (i: { path: PropertyKey[]; message: string }) =>
                  `${i.path.length ? `argument ${formatPath(i.path)}` : 'arguments'}: ${i.message}`,
              )
              .join('; ')
            throw toErrorData(
              new VtError(ErrorNames.badRequest, `invalid arguments: ${detail}`, { code: 'BAD_REQUEST' }),
              where,
            )
          }
          try {
            return await implFn.apply(impl, parsed.data as unknown[])
          } catch (e) {
            throw toErrorData(e, where)
          }
        })
      }
    }
    this.states.set(session.id, state)
    session.onClose(() => {
      this.states.delete(session.id)
    })
    return state
  }

  private async sendFrame(sessionId: string, frame: Buffer): Promise<void> {
    const conn = this.store.sessions.get(sessionId)?.connection as Connection | undefined
    if (!conn || conn.ws.readyState !== conn.ws.OPEN) {
      throw new VtError(ErrorNames.connectionLost, 'the controller is not connected', { code: 'CONNECTION_LOST' })
    }
    await new Promise<void>((resolve, reject) => conn.ws.send(frame, e => (e ? reject(e) : resolve())))
  }

  async start(): Promise<RunningAgent> {
    const { options } = this
    const host = options.host ?? '127.0.0.1'
    if (!isLoopback(host) && !options.tls && !options.insecure) {
      throw new Error(
        `refusing to listen on ${host} without TLS: give --tls-cert and --tls-key, or --insecure on a network you trust`,
      )
    }
    if (!options.token || options.token.length < 16) {
      throw new Error('the agent token must have at least 16 characters (give --token-file or --token-env)')
    }
    this.lock()
    const reapedAtStart = await this.store.reapLeftovers()
    if (reapedAtStart) this.log.info('reaped leftovers of a previous run', { resources: reapedAtStart })
    for (const module of Object.values(serviceModules) as ServiceModule[]) {
      this.factories.push({ module, factory: (await module.setup(this.context)) as SessionFactory<ServiceName> })
    }
    this.server = options.tls
      ? createHttpsServer({
          cert: readFileSync(options.tls.cert),
          key: readFileSync(options.tls.key),
          ...(options.tls.ca ? { ca: readFileSync(options.tls.ca), requestCert: true, rejectUnauthorized: true } : {}),
        })
      : createHttpServer()
    this.server.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' })
      res.end('vt agent: connect with a WebSocket\n')
    })
    this.wss = new WebSocketServer({
      server: this.server,
      maxPayload: MAX_FRAME_BYTES + 1024,
      perMessageDeflate: false,
    })
    this.wss.on('connection', (ws, req: IncomingMessage) => {
      const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`
      new Connection(this, ws, remote)
    })
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject)
      this.server?.listen(options.port ?? 0, host, () => resolve())
    })
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

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('agent stopping')
      for (const client of this.wss?.clients ?? []) client.close(1001, 'agent stopping')
      this.wss?.close()
      await new Promise<void>(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
      await this.store.closeAll('agent stopping')
      for (const { module } of this.factories) await module.shutdown?.()
      rmSync(join(this.options.stateDir, 'agent.lock'), { force: true })
      this.log.info('agent stopped')
    })()
    return this.stopping
  }

  /** One agent per state dir: a second one would reap the first one's sessions. */
  private lock(): void {
    const file = join(this.options.stateDir, 'agent.lock')
    try {
      const other = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; startTime: number }
      if (other.pid !== process.pid && isSameProcess(other.pid, other.startTime)) {
        throw new Error(`another agent (pid ${other.pid}) uses state dir ${this.options.stateDir}`)
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && !(e instanceof SyntaxError)) throw e
    }
    writeFileSync(file, JSON.stringify({ pid: process.pid, startTime: startTimeOf(process.pid) }))
  }
}

function unknownMethod(host: string, name: string): () => never {
  return () => {
    throw toErrorData(
      new VtError(ErrorNames.badRequest, `unknown function "${String(name).slice(0, 128)}"`, {
        code: 'UNKNOWN_FUNCTION',
      }),
      { host },
    )
  }
}

function formatPath(path: PropertyKey[]): string {
  const [first, ...rest] = path
  return [typeof first === 'number' ? first + 1 : String(first), ...rest.map(String)].join('.')
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  return new Agent(options).start()
}
