// The API a service implementation sees (see the note at the top of src/protocol/index.ts).
import type { EventPayload, ServiceImplementation } from '../src/protocol/contract.ts'
import type { HostFacts } from '../src/protocol/facts.ts'
import type { ServiceName, Services } from '../src/protocol/registry.ts'
import type { CapacityLedger } from './capacity.ts'

/** What a session records so that it can be reaped. `kind` picks the reaper. */
export type ResourceSpec =
  | { kind: 'process'; pid: number; startTime?: number; group?: boolean; label?: string }
  | { kind: 'path'; path: string; label?: string }
  | { kind: string; label?: string; [field: string]: unknown }

/** A recorded resource as stored on disk. */
export type ResourceRecord = ResourceSpec & { id: string; createdAt: number }

export type Reaper = (record: ResourceRecord, log: Logger) => Promise<void>

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
  error(message: string, fields?: Record<string, unknown>): void
}

export interface AgentContext {
  name: string
  stateDir: string
  /** Directories the files service may touch (real paths). */
  roots: string[]
  /** `vt agent --confined`: no host commands, no raw QEMU arguments, no exec: URIs, no HMP. */
  confined: boolean
  labels: Record<string, string>
  /** The host's capacity ledger: reservations and VMs book against it (agent/capacity.ts). */
  capacity: CapacityLedger
  log: Logger
  /** Registers how to reap resources of a custom kind ('netns', 'vm', ...). */
  registerReaper(kind: string, reaper: Reaper): void
  /** The host's facts now (static ones cached, memory and disk fresh). */
  facts(): Promise<HostFacts>
  /** Contributes facts; called for the handshake and for `facts.get`. */
  addFacts(provider: () => Promise<Partial<HostFacts>> | Partial<HostFacts>): void
  /**
   * Another live session, when `secret` is its secret (compared in constant time): `vt console` reaches the VMs
   * of a paused run's session this way. Undefined for an unknown, closed or wrong one.
   */
  peerSession(id: string, secret: string): { id: string; dir: string } | undefined
  /** Sends bytes on a binary stream of the current connection of a session (see files.read). */
  sendStream(sessionId: string, stream: number, chunk: Uint8Array): Promise<void>
  /** Sends a frame whose first 4 bytes already hold the stream header (wire.ts writeStreamHeader): no copy. */
  sendStreamFrame(sessionId: string, frame: Buffer): Promise<void>
  /**
   * Receives binary stream chunks for a session; returns an unsubscribe function. A sink that returns a promise
   * (e.g. an async disk write) gets backpressure: the connection stops reading while many are pending.
   */
  onStream(sessionId: string, stream: number, sink: (chunk: Buffer) => void | Promise<void>): () => void
}

export interface SessionContext {
  id: string
  /** A directory of the session's own (removed when the session is reaped). */
  dir: string
  /** Aborted when the session ends (lease expiry, close, agent shutdown). */
  signal: AbortSignal
  log: Logger
  track(resource: ResourceSpec): Promise<string>
  untrack(id: string, options?: { reap?: boolean }): Promise<void>
  onClose(fn: () => Promise<void> | void): void
  /** True while the controller's link has much unsent data queued: pause producers of events until false. */
  congested(): boolean
}

export interface ServiceSession<N extends ServiceName> extends SessionContext {
  emit<E extends keyof Services[N]['events'] & string>(event: E, payload: EventPayload<Services[N], E>): void
}

/**
 * The agent's own view of a session: its lease, its records, closing it. Every factory gets it as a second
 * argument; only the built-in session service needs it (services should use the SessionContext).
 */
export interface SessionControl {
  readonly id: string
  readonly records: ReadonlyMap<string, ResourceRecord>
  /** Renews the lease. */
  touch(): void
  remainingMs(): number
  close(reason: string, options?: { keepConnection?: boolean }): Promise<void>
}

export type SessionFactory<N extends ServiceName> = (
  session: ServiceSession<N>,
  control: SessionControl,
) => ServiceImplementation<Services[N]>

export interface ServiceModule<N extends ServiceName = ServiceName> {
  name: N
  setup(agent: AgentContext): SessionFactory<N> | Promise<SessionFactory<N>>
  /** Called when the agent stops, after every session was reaped. */
  shutdown?(): Promise<void>
}

export function implement<N extends ServiceName>(
  name: N,
  setup: (agent: AgentContext) => SessionFactory<N> | Promise<SessionFactory<N>>,
  shutdown?: () => Promise<void>,
): ServiceModule<N> {
  return { name, setup, shutdown }
}
