// The controller's connection to one agent: WebSocket + handshake + birpc, heartbeats (pings; the link is
// declared dead after `deadAfterMs` of silence), and reconnection within the session's lease. Calls in flight
// when the link breaks fail at once with a ConnectionLostError naming the host and the call; calls made while
// reconnecting wait for the link (up to the lease) and then run.
// Over 400 lines on purpose: the handshake, heartbeats, reconnection, link state and byte streams all act on
// the one socket and the calls pending on it; split apart, each part would need the others' private state.
import { readFileSync } from 'node:fs'
import { type BirpcReturn, createBirpc } from 'birpc'
import WebSocket from 'ws'
import { type EventPayload, methodName, type ServiceClient } from '../protocol/contract.ts'
import { type ErrorData, ErrorNames, fromErrorData, isErrorData, VtRemoteError } from '../protocol/errors.ts'
import type { HostFacts } from '../protocol/facts.ts'
import type { ServiceName, Services } from '../protocol/registry.ts'
import {
  type ControllerFunctions,
  decodeJson,
  decodeStreamChunk,
  encodeJson,
  encodeStreamChunk,
  type Hello,
  MAX_FRAME_BYTES,
  MAX_TOKEN_CHARS,
  PROTOCOL_VERSION,
  type Welcome,
} from '../protocol/wire.ts'

export interface AgentClientOptions {
  url: string
  token: string
  /** Name used in errors until the agent tells its own. */
  name?: string
  leaseSeconds?: number
  /** PEM file paths: `ca` to trust the agent's certificate, `cert` + `key` for a client certificate. */
  tls?: { ca?: string; cert?: string; key?: string }
  /** Ping interval. Default: a quarter of the dead-peer delay. */
  heartbeatMs?: number
  /** Silence after which the link is declared dead. Default min(3 s, lease / 2). */
  deadAfterMs?: number
  connectTimeoutMs?: number
  /** Reconnect within the lease after a broken link (default true). */
  reconnect?: boolean
  clientName?: string
  /** Protocol version to announce (tests only). */
  protocolVersion?: number
}

type Rpc = BirpcReturn<Record<string, (...args: any[]) => any>, ControllerFunctions>
export type Listener = (payload: unknown) => void

export type ClientState = 'connected' | 'reconnecting' | 'closed'

/** A change of the link's state; `closedError` says why once it is 'closed'. */
export interface LinkStateEvent {
  state: ClientState
  closedError?: VtRemoteError
}

/** Event names of service `N`, from its contract. */
export type ServiceEventName<N extends ServiceName> = keyof Services[N]['events'] & string

export class AgentClient {
  host: string
  facts!: HostFacts
  session!: Welcome['session']
  private linkState: ClientState = 'connected'
  private readonly linkListeners = new Set<(e: LinkStateEvent) => void>()
  /** Why the client closed for good (lease lost, closed by the user). */
  closedError?: VtRemoteError
  private ws!: WebSocket
  private rpc!: Rpc
  private onRpcMessage?: (data: unknown) => unknown
  private readonly listeners = new Map<string, Set<Listener>>()
  private readonly streamSinks = new Map<number, (chunk: Buffer) => void>()
  private readonly streamAborts = new Map<number, (e: Error) => void>()
  private nextStream = 1
  private heartbeat?: NodeJS.Timeout
  private lastHeard = Date.now()
  private reconnecting?: Promise<void>
  private closing = false
  private readonly serviceProxies = new Map<string, unknown>()
  private readonly closedListeners = new Set<(why: string) => void>()
  readonly notices: ErrorData[] = []

  private constructor(readonly options: AgentClientOptions) {
    this.host = options.name ?? options.url
  }

  static async connect(options: AgentClientOptions): Promise<AgentClient> {
    if (options.token.length > MAX_TOKEN_CHARS) {
      // An agent refuses to start with such a token; say so instead of a refused handshake.
      throw new Error(
        `the token for ${options.name ?? options.url} has ${options.token.length} characters, more than the ${MAX_TOKEN_CHARS} a hello may carry`,
      )
    }
    const client = new AgentClient(options)
    await client.open()
    return client
  }

  /** 'connected', 'reconnecting' (calls wait, within the lease) or 'closed' for good. */
  get state(): ClientState {
    return this.linkState
  }

  /** Sets the state and tells the link listeners (after `closedError` is set, so they can read it). */
  private setState(state: ClientState): void {
    if (state === this.linkState) return
    this.linkState = state
    if (state === 'closed') this.announceClosed()
    const event: LinkStateEvent = state === 'closed' ? { state, closedError: this.closedError } : { state }
    for (const l of [...this.linkListeners]) {
      try {
        l(event)
      } catch {
        // a listener's bug must not break the link
      }
    }
  }

  /** Calls `listener` on every change of the link's state (not for the current one). Returns the unsubscribe. */
  onLinkState(listener: (e: LinkStateEvent) => void): () => void {
    this.linkListeners.add(listener)
    return () => this.linkListeners.delete(listener)
  }

  get leaseMs(): number {
    return this.session.leaseSeconds * 1000
  }

  private get deadAfterMs(): number {
    return this.options.deadAfterMs ?? Math.min(3000, this.leaseMs / 2)
  }

  private where(call?: string): Partial<ErrorData> {
    return { host: this.host, ...(call ? splitCall(call) : {}) }
  }

  private connectionLost(call: string | undefined, why: string): VtRemoteError {
    return new VtRemoteError({
      name: ErrorNames.connectionLost,
      message: `connection to agent lost (${why}) while the call was in flight`,
      code: 'CONNECTION_LOST',
      ...this.where(call),
    })
  }

  /** Opens a socket and performs the handshake (new session, or resume of ours). */
  private async open(resume = true): Promise<void> {
    const { options } = this
    const tls = options.tls
    const ws = new WebSocket(options.url, {
      maxPayload: MAX_FRAME_BYTES + 1024,
      perMessageDeflate: false,
      // A zero mask lets both ends skip XOR-ing every byte (masking protects browser-facing proxies; there are
      // none here, and TLS protects the link where it matters).
      generateMask: mask => mask.fill(0),
      handshakeTimeout: options.connectTimeoutMs ?? 10_000,
      ca: tls?.ca ? readFileSync(tls.ca) : undefined,
      cert: tls?.cert ? readFileSync(tls.cert) : undefined,
      key: tls?.key ? readFileSync(tls.key) : undefined,
    })
    ws.binaryType = 'nodebuffer'
    const welcome = await new Promise<Welcome>((resolve, reject) => {
      const fail = (e: Error) => {
        ws.terminate()
        reject(e)
      }
      const timer = setTimeout(
        () =>
          fail(
            this.error(
              ErrorNames.timeout,
              'TIMEOUT',
              `no answer from agent at ${options.url} within the connect timeout`,
            ),
          ),
        options.connectTimeoutMs ?? 10_000,
      )
      ws.once('error', e => {
        clearTimeout(timer)
        reject(
          this.error(
            ErrorNames.connectionLost,
            (e as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? 'CONNECTION_REFUSED' : 'CONNECT',
            `cannot connect to agent at ${options.url}: ${e.message}`,
          ),
        )
      })
      ws.once('close', (code, reason) => {
        clearTimeout(timer)
        reject(
          this.error(
            ErrorNames.connectionLost,
            'CONNECT',
            `agent at ${options.url} closed the connection (${code} ${reason})`,
          ),
        )
      })
      ws.once('open', () => {
        const hello: Hello = {
          t: 'hello',
          protocol: options.protocolVersion ?? PROTOCOL_VERSION,
          token: options.token,
          client: { name: options.clientName ?? `vt pid ${process.pid}`, pid: process.pid },
          leaseSeconds: options.leaseSeconds,
          resume: resume && this.session ? { session: this.session.id, secret: this.session.secret } : undefined,
        }
        ws.send(encodeJson(hello))
      })
      ws.once('message', data => {
        clearTimeout(timer)
        let frame: { t?: unknown; error?: unknown } | null
        try {
          frame = decodeJson(String(data)) as typeof frame
        } catch {
          return fail(this.error(ErrorNames.badRequest, 'BAD_FRAME', 'agent sent an invalid handshake answer'))
        }
        if (frame?.t === 'welcome') return resolve(frame as unknown as Welcome)
        if (frame?.t === 'refused' && isErrorData(frame.error)) {
          ws.removeAllListeners('close')
          ws.on('close', () => {})
          return fail(fromErrorData(frame.error, { host: this.host }))
        }
        fail(this.error(ErrorNames.badRequest, 'BAD_FRAME', 'agent sent an unexpected handshake answer'))
      })
    })
    ws.removeAllListeners()
    if (welcome.protocol !== PROTOCOL_VERSION && options.protocolVersion === undefined) {
      ws.terminate()
      throw this.error(
        ErrorNames.protocolVersion,
        'PROTOCOL_VERSION',
        `protocol version mismatch: this controller speaks version ${PROTOCOL_VERSION}, the agent speaks version ${welcome.protocol}`,
      )
    }
    this.host = welcome.host
    this.facts = welcome.facts
    this.session = welcome.session
    this.ws = ws
    this.lastHeard = Date.now()
    this.rpc = createBirpc<Record<string, (...args: any[]) => any>, ControllerFunctions>(
      {
        event: (service, name, payload) => {
          for (const l of this.listeners.get(`${service}.${name}`) ?? []) {
            try {
              l(payload)
            } catch {
              // a listener's bug must not break the link
            }
          }
        },
      },
      {
        post: frame => ws.send(frame),
        on: fn => {
          this.onRpcMessage = fn
        },
        serialize: encodeJson,
        deserialize: frame => frame,
        timeout: -1,
        // No onGeneralError: birpc routes a rejected call through it, and returning true would turn the
        // rejection into `undefined`.
      },
    )
    ws.on('message', (data: Buffer, isBinary) => {
      this.lastHeard = Date.now()
      if (isBinary) {
        const decoded = decodeStreamChunk(data)
        if (decoded) this.streamSinks.get(decoded.stream)?.(decoded.chunk)
        return
      }
      let frame: { t?: unknown; error?: unknown } | null
      try {
        frame = decodeJson(data.toString('utf8')) as typeof frame
      } catch {
        return
      }
      if (frame?.t === 'error') {
        if (isErrorData(frame.error) && this.notices.length < 100) this.notices.push(frame.error)
        return
      }
      Promise.resolve(this.onRpcMessage?.(frame)).catch(() => {})
    })
    ws.on('pong', () => {
      this.lastHeard = Date.now()
    })
    ws.on('close', (code, reason) => this.onLinkDown(`closed: ${code}${reason.length ? ` ${reason}` : ''}`))
    ws.on('error', () => {})
    this.startHeartbeat()
    this.setState('connected')
  }

  private startHeartbeat(): void {
    clearInterval(this.heartbeat)
    const every = this.options.heartbeatMs ?? Math.max(50, Math.floor(this.deadAfterMs / 4))
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > this.deadAfterMs) {
        this.ws.terminate() // 'close' follows and reconnects
        return
      }
      if (this.ws.readyState === WebSocket.OPEN) this.ws.ping()
    }, every)
    this.heartbeat.unref()
  }

  private onLinkDown(why: string): void {
    clearInterval(this.heartbeat)
    const lost = (method: string) => this.connectionLost(method, why)
    this.rpc.$rejectPendingCalls(({ method, reject }) => reject(lost(method)))
    this.rpc.$close(this.connectionLost(undefined, why))
    for (const abort of this.streamAborts.values()) abort(this.connectionLost(undefined, why))
    this.streamAborts.clear()
    this.streamSinks.clear()
    if (this.closing || this.state === 'closed') return
    if (this.options.reconnect === false) {
      this.closedError = this.connectionLost(undefined, why)
      this.setState('closed')
      return
    }
    this.reconnecting = this.reconnectLoop(why)
    this.setState('reconnecting')
  }

  private async reconnectLoop(why: string): Promise<void> {
    const deadline = this.lastHeard + this.leaseMs
    let delay = 50
    let lastError: unknown
    while (!this.closing && Date.now() < deadline) {
      try {
        await this.open()
        this.reconnecting = undefined
        return
      } catch (e) {
        lastError = e
        if (e instanceof VtRemoteError && (e.code === 'SESSION_EXPIRED' || e.code === 'AUTH')) break
        // Refused: the host answered, but no agent listens any more. It stopped or was killed, and an agent
        // restarted on the host reaps our session at its start: waiting out the lease cannot bring it back.
        if (e instanceof VtRemoteError && e.code === 'CONNECTION_REFUSED') {
          this.closeAsGone(why)
          return
        }
      }
      await new Promise(r => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))))
      delay = Math.min(delay * 2, 1000)
    }
    this.reconnecting = undefined
    this.closedError = new VtRemoteError({
      name: ErrorNames.sessionExpired,
      message: `session lost: the link broke (${why}) and could not be resumed within the ${this.session.leaseSeconds} s lease${
        lastError ? ` (last attempt: ${(lastError as Error).message})` : ''
      }`,
      code: 'SESSION_EXPIRED',
      host: this.host,
    })
    this.setState('closed')
  }

  private closeAsGone(why: string): void {
    this.reconnecting = undefined
    this.closedError = new VtRemoteError({
      name: ErrorNames.connectionLost,
      message: `the agent is gone: the link broke (${why}) and nothing listens at ${this.options.url} any more (connection refused); the agent stopped or was killed, and its session with everything in it is lost`,
      code: 'AGENT_GONE',
      host: this.host,
    })
    this.setState('closed')
  }

  private error(name: string, code: string, message: string): VtRemoteError {
    return new VtRemoteError({ name, message, code, host: this.host })
  }

  /** The live rpc, waiting for a reconnect in progress. */
  private async live(call: string): Promise<Rpc> {
    if (this.state === 'reconnecting') await this.reconnecting
    if (this.state === 'closed') {
      const base = this.closedError ?? this.error(ErrorNames.connectionLost, 'CLOSED', 'client is closed')
      throw new VtRemoteError({ ...base.data, ...splitCall(call) })
    }
    return this.rpc
  }

  /** Calls `service.fn` on the agent. Errors carry host, service and call. */
  async call(service: string, fn: string, args: unknown[]): Promise<unknown> {
    const method = methodName(service, fn)
    // JSON turns undefined into null inside an argument list: drop trailing ones so optional arguments stay unset.
    let n = args.length
    while (n > 0 && args[n - 1] === undefined) n--
    if (n < args.length) args = args.slice(0, n)
    const rpc = await this.live(method)
    try {
      return await rpc.$call(method, ...args)
    } catch (e) {
      if (e instanceof VtRemoteError) throw e
      if (isErrorData(e)) throw fromErrorData(e, this.where(method))
      throw this.connectionLost(method, (e as Error)?.message ?? String(e))
    }
  }

  /** Typed functions of one service: `client.service('exec').run({...})`. */
  service<N extends ServiceName>(name: N): ServiceClient<Services[N]> {
    let proxy = this.serviceProxies.get(name) as ServiceClient<Services[N]> | undefined
    if (!proxy) {
      proxy = new Proxy({} as ServiceClient<Services[N]>, {
        get: (_, fn) => (typeof fn === 'string' ? (...args: unknown[]) => this.call(name, fn, args) : undefined),
      })
      this.serviceProxies.set(name, proxy)
    }
    return proxy
  }

  /** Called once when the client closes for good (lease lost, agent gone, or close()). */
  onClosed(listener: (why: string) => void): () => void {
    this.closedListeners.add(listener)
    return () => this.closedListeners.delete(listener)
  }

  private announceClosed(): void {
    const why = this.closedError?.message ?? 'the client closed'
    for (const l of [...this.closedListeners]) l(why)
    this.closedListeners.clear()
  }

  /** Subscribes to a service's events (payload typed by the service's contract); returns the unsubscribe. */
  on<N extends ServiceName, E extends ServiceEventName<N>>(
    service: N,
    event: E,
    listener: (payload: EventPayload<Services[N], E>) => void,
  ): () => void {
    const key = `${service}.${event}`
    let set = this.listeners.get(key)
    if (!set) this.listeners.set(key, (set = new Set()))
    // The agent sends what its contract declares (both sides are typed by the same contract object).
    const l = listener as Listener
    set.add(l)
    return () => set.delete(l)
  }

  /** A fresh binary stream id on this client. */
  newStream(sink?: (chunk: Buffer) => void, onAbort?: (e: Error) => void): number {
    const id = this.nextStream++
    if (this.nextStream > 0xfffffff0) this.nextStream = 1
    if (sink) this.streamSinks.set(id, sink)
    if (onAbort) this.streamAborts.set(id, onAbort)
    return id
  }

  endStream(id: number): void {
    this.streamSinks.delete(id)
    this.streamAborts.delete(id)
  }

  private inflight: Promise<void>[] = []
  private inflightBytes = 0

  /** Sends one chunk on a stream, keeping at most ~16 MiB queued in the socket. */
  async sendChunk(stream: number, chunk: Uint8Array): Promise<void> {
    if (this.state !== 'connected') throw this.connectionLost('files.put', 'link is down')
    const frame = encodeStreamChunk(stream, chunk)
    const size = frame.length
    this.inflightBytes += size
    const p = new Promise<void>((resolve, reject) =>
      this.ws.send(frame, e => {
        this.inflightBytes -= size
        if (e) reject(this.connectionLost('files.put', e.message))
        else resolve()
      }),
    )
    this.inflight.push(p)
    while (this.inflightBytes > 16 * 1024 * 1024 && this.inflight.length) await this.inflight.shift()
    if (this.inflight.length > 64) this.inflight = this.inflight.slice(-64)
  }

  async flush(): Promise<void> {
    const all = this.inflight
    this.inflight = []
    await Promise.all(all)
  }

  /**
   * After the agent was restarted (cluster.faults.restartAgent; the old session died with the old process): waits
   * until this client has given the old session up, then opens a new session at the same URL. Listeners stay.
   */
  async renew(timeoutMs = 30_000): Promise<void> {
    if (this.closing) throw this.error(ErrorNames.connectionLost, 'CLOSED', 'client was closed')
    if (this.state !== 'closed') {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          off()
          reject(
            this.error(
              ErrorNames.timeout,
              'TIMEOUT',
              `the link to ${this.host}'s old agent was still ${this.state} ${timeoutMs / 1000} s after its restart`,
            ),
          )
        }, timeoutMs)
        const off = this.onLinkState(e => {
          if (e.state !== 'closed') return
          clearTimeout(timer)
          off()
          resolve()
        })
      })
    }
    this.closedError = undefined
    await this.open(false)
  }

  /** Simulates a network failure (tests): drops the socket without a close handshake. */
  breakLink(): void {
    this.ws.terminate()
  }

  /** Ends the session: the agent reaps what it created. */
  async close(): Promise<void> {
    if (this.state === 'closed' || this.closing) return
    this.closing = true
    try {
      if (this.state === 'reconnecting') await this.reconnecting
      if (this.state === 'connected') await this.rpc.$call(methodName('session', 'close'))
    } catch {
      // the agent is gone: it reaps on its own when the lease expires
    } finally {
      clearInterval(this.heartbeat)
      this.closedError = this.error(ErrorNames.connectionLost, 'CLOSED', 'client was closed')
      this.setState('closed')
      await new Promise<void>(resolve => {
        if (this.ws.readyState === WebSocket.CLOSED) return resolve()
        this.ws.once('close', () => resolve())
        this.ws.close(1000, 'bye')
        setTimeout(() => {
          this.ws.terminate()
          resolve()
        }, 1000).unref()
      })
    }
  }
}

function splitCall(method: string): { service?: string; call: string } {
  const i = method.indexOf('.')
  return i > 0 ? { service: method.slice(0, i), call: method.slice(i + 1) } : { call: method }
}
