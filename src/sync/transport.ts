// How a process reaches the run's sync server: a worker over its IPC channel to the main process of `vt test`;
// any other process (a script using Cluster.connect directly, a unit test) over a server of its own.
import type { Arrival, Participant, SyncOp, SyncReply } from '../protocol/sync.ts'
import { SyncServer } from './server.ts'

export interface SyncTransport {
  /** Sends a request; `onArrival` hears of other parties arriving at the same barrier while this one waits. */
  request(from: Participant, op: SyncOp, onArrival?: (a: Arrival) => void): { id: string; reply: Promise<SyncReply> }
  /** The requester went away: the server breaks its barrier or drops its wait. */
  cancel(id: string, reason: string): void
  /** Requests sent and not yet answered. */
  readonly inFlight: ReadonlySet<string>
}

let counter = 0
const nextId = () => `s${++counter}`

/** A server in this process (outside `vt test`). */
export class LocalTransport implements SyncTransport {
  readonly inFlight = new Set<string>()
  constructor(readonly server: SyncServer = new SyncServer()) {}

  request(from: Participant, op: SyncOp, onArrival?: (a: Arrival) => void) {
    const id = nextId()
    this.inFlight.add(id)
    const reply = this.server.request('local', id, from, op, onArrival).finally(() => this.inFlight.delete(id))
    return { id, reply }
  }

  cancel(id: string, reason: string): void {
    this.server.cancel('local', id, reason)
  }
}

/** Worker → main messages (see src/runner/ipc.ts). */
export type SyncToMain =
  | { type: 'sync'; id: string; from: Participant; request: SyncOp; watch?: boolean }
  | { type: 'syncCancel'; id: string; reason: string }

/** Main → worker messages. */
export type SyncToWorker =
  | { type: 'syncReply'; id: string; reply: SyncReply }
  | { type: 'syncArrival'; id: string; arrival: Arrival }

/** The worker's side: requests go to the main process, replies come back by id. */
export class IpcTransport implements SyncTransport {
  readonly inFlight = new Set<string>()
  private readonly waiting = new Map<string, { resolve: (r: SyncReply) => void; onArrival?: (a: Arrival) => void }>()
  constructor(private readonly send: (message: SyncToMain) => void) {}

  request(from: Participant, op: SyncOp, onArrival?: (a: Arrival) => void) {
    const id = nextId()
    this.inFlight.add(id)
    const reply = new Promise<SyncReply>(resolve => this.waiting.set(id, { resolve, onArrival }))
    // Arrival notices cost a message per party per arrival: only for requests that listen.
    this.send({ type: 'sync', id, from, request: op, ...(onArrival ? { watch: true } : {}) })
    return { id, reply }
  }

  cancel(id: string, reason: string): void {
    if (this.waiting.has(id)) this.send({ type: 'syncCancel', id, reason })
  }

  handle(message: SyncToWorker): void {
    const w = this.waiting.get(message.id)
    if (!w) return
    if (message.type === 'syncArrival') {
      w.onArrival?.(message.arrival)
      return
    }
    this.waiting.delete(message.id)
    this.inFlight.delete(message.id)
    w.resolve(message.reply)
  }

  /** The main process went away: nothing will answer. */
  closeAll(reason: string): void {
    for (const [id, w] of this.waiting) {
      this.inFlight.delete(id)
      w.resolve({ ok: false, code: 'error', message: reason })
    }
    this.waiting.clear()
  }
}

let current: SyncTransport | undefined

/** Set by the worker process at start. */
export function setSyncTransport(transport: SyncTransport | undefined): void {
  current = transport
}

/** The worker's transport, or a process-local server when not running under `vt test`. */
export function syncTransport(): SyncTransport {
  current ??= new LocalTransport()
  return current
}

/** Where the main process's server meets the dispatcher: one owner per worker process. */
export function serveWorker(
  server: SyncServer,
  owner: string,
  message: SyncToMain,
  send: (message: SyncToWorker) => void,
): void {
  if (message.type === 'syncCancel') {
    server.cancel(owner, message.id, message.reason)
    return
  }
  void server
    .request(
      owner,
      message.id,
      message.from,
      message.request,
      message.watch ? arrival => send({ type: 'syncArrival', id: message.id, arrival }) : undefined,
    )
    .then(reply => send({ type: 'syncReply', id: message.id, reply }))
}
