// One controller connection: the handshake (the first frame must be a hello with the token; nothing else is
// reachable before it), then birpc calls into the session's services and binary stream chunks.
import { createHash, timingSafeEqual } from 'node:crypto'
import { type BirpcReturn, createBirpc } from 'birpc'
import type { WebSocket } from 'ws'
import { z } from 'zod'
import { type ErrorData, ErrorNames } from '../src/protocol/errors.ts'
import type { HostFacts } from '../src/protocol/facts.ts'
import { services as contracts } from '../src/protocol/registry.ts'
import {
  type ControllerFunctions,
  checkRpcFrame,
  decodeJson,
  decodeStreamChunk,
  encodeJson,
  HELLO_TIMEOUT_MS,
  LEASE_SECONDS,
  MAX_HELLO_BYTES,
  MAX_TOKEN_CHARS,
  type Notice,
  PROTOCOL_VERSION,
  type Refused,
  type Welcome,
} from '../src/protocol/wire.ts'
import { type SessionBinding, unknownMethod } from './bind.ts'
import type { Logger } from './service.ts'
import type { Session, SessionConnection, SessionStore } from './sessions.ts'

/** What a connection needs from the agent that accepted it. */
export interface ConnectionHost {
  readonly name: string
  readonly token: string
  readonly maxLeaseSeconds: number
  readonly log: Logger
  readonly store: SessionStore
  facts(): Promise<HostFacts>
  /** Binds the services to a new session. */
  bind(session: Session): SessionBinding
  /** The binding of a live session (for a resume). */
  binding(sessionId: string): SessionBinding | undefined
  /** The peer's token checked out (lifts the limits on unauthenticated connections, agent/gate.ts). */
  authenticated(remote: string): void
}

/** Frames a peer may send behind its hello before the welcome; they run after it, in order. */
const MAX_EARLY_FRAMES = 256

const helloSchema = z.strictObject({
  t: z.literal('hello'),
  protocol: z.number(),
  token: z.string().max(MAX_TOKEN_CHARS),
  client: z.strictObject({ name: z.string().max(200), pid: z.number() }),
  leaseSeconds: z.number().positive().max(LEASE_SECONDS.max).optional(),
  resume: z.strictObject({ session: z.string().max(64), secret: z.string().max(128) }).optional(),
})

const DEFAULT_LEASE_SECONDS = 30

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected))
}

type Rpc = BirpcReturn<ControllerFunctions, Record<string, never>>

/** One WebSocket. Attached to a session after the handshake. */
export class Connection implements SessionConnection {
  private state?: SessionBinding
  private rpc?: Rpc
  private onRpcMessage?: (data: unknown) => unknown
  private helloTimer?: NodeJS.Timeout
  private pendingChunks = 0
  /** Frames that arrived during the handshake (undefined once it ended). */
  private early?: { data: Buffer; isBinary: boolean }[]

  constructor(
    readonly agent: ConnectionHost,
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

  emit(service: string, event: string, payload: unknown): void {
    const rpc = this.rpc
    if (rpc && !rpc.$closed) rpc.$callEvent('event', service, event, payload).catch(() => {})
  }

  async sendFrame(frame: Buffer): Promise<void> {
    if (this.ws.readyState !== this.ws.OPEN) throw new Error('the connection is closed')
    await new Promise<void>((resolve, reject) => this.ws.send(frame, e => (e ? reject(e) : resolve())))
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
      if (this.early) {
        // Behind the hello, before the welcome: kept for after it, never dropped unanswered.
        if (this.early.length >= MAX_EARLY_FRAMES) {
          this.early = []
          this.close(`more than ${MAX_EARLY_FRAMES} frames before the welcome`)
        } else this.early.push({ data, isBinary })
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
    this.early = []
    try {
      await this.handshakeSteps(data, isBinary)
      const early = this.early
      this.early = undefined
      // Only a welcomed connection runs them; a refused one is closing and they go with it.
      if (this.rpc) for (const f of early) this.onMessage(f.data, f.isBinary)
    } catch (e) {
      this.early = undefined
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
    const pending = { session: { touch() {} } } as unknown as SessionBinding
    this.state = pending
    if (isBinary) return this.refuse(ErrorNames.auth, 'AUTH', 'first frame must be the hello handshake (got binary)')
    if (data.length > MAX_HELLO_BYTES) {
      return this.refuse(ErrorNames.auth, 'AUTH', `the hello has ${data.length} bytes, more than ${MAX_HELLO_BYTES}`)
    }
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
    this.agent.authenticated(this.remote)
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
    const state = resumed ? this.agent.binding(session.id) : this.agent.bind(session)
    if (!state) return this.refuse(ErrorNames.sessionExpired, 'SESSION_EXPIRED', 'session state is gone')
    session.touch()
    session.connection = this
    this.state = state
    const host = this.agent.name
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
      resolver: name => state.functions.get(name) ?? unknownMethod(host, name),
      onGeneralError: e => {
        this.agent.log.warn('rpc error', { session: session.id, error: e.message })
        return true
      },
    })
    const welcome: Welcome = {
      t: 'welcome',
      protocol: PROTOCOL_VERSION,
      host,
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
