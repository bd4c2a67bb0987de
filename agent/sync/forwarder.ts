// The agent's half of coordination: requests from host scripts (`vt-sync` over the session's unix socket) and
// from guests (over their command channel) go to the session's controller as `sync.request` events, and its
// `sync.reply` call answers them. The agent keeps no barrier state: the main process of `vt test` does.
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { Participant, SyncCancelEvent, SyncOp, SyncReply, SyncRequestEvent } from '../../src/protocol/sync.ts'

export interface SyncCall {
  reply: Promise<SyncReply>
  /** The participant went away: the controller breaks its barrier. */
  cancel(reason: string): void
}

/** What guests and host scripts use to take part. */
export interface SyncEndpoint {
  request(from: Participant, op: SyncOp): SyncCall
}

export class SyncForwarder implements SyncEndpoint {
  private readonly pending = new Map<string, (r: SyncReply) => void>()
  private next = 0
  private closed?: string

  constructor(
    private readonly emitRequest: (e: SyncRequestEvent) => boolean,
    private readonly emitCancel: (e: SyncCancelEvent) => void,
  ) {}

  request(from: Participant, op: SyncOp): SyncCall {
    const id = `a${++this.next}`
    const reply = new Promise<SyncReply>(resolve => {
      if (this.closed) return resolve({ ok: false, code: 'error', message: this.closed })
      this.pending.set(id, resolve)
      if (!this.emitRequest({ id, from, request: op })) {
        this.pending.delete(id)
        resolve({ ok: false, code: 'error', message: 'the controller of this session is not connected' })
      }
    })
    const cancel = (reason: string) => {
      const resolve = this.pending.get(id)
      if (!resolve) return
      this.pending.delete(id)
      this.emitCancel({ id, reason })
      resolve({ ok: false, code: 'error', message: reason })
    }
    return { reply, cancel }
  }

  /** The controller's answer; false when the request is no longer pending. */
  reply(id: string, reply: SyncReply): boolean {
    const resolve = this.pending.get(id)
    if (!resolve) return false
    this.pending.delete(id)
    resolve(reply)
    return true
  }

  close(reason: string): void {
    this.closed = reason
    for (const resolve of this.pending.values()) resolve({ ok: false, code: 'error', message: reason })
    this.pending.clear()
  }
}

/** Forwarders by session id: the vm and exec services find their session's one here. */
const bySession = new Map<string, SyncForwarder>()

export function registerForwarder(sessionId: string, forwarder: SyncForwarder): () => void {
  bySession.set(sessionId, forwarder)
  return () => {
    if (bySession.get(sessionId) === forwarder) bySession.delete(sessionId)
  }
}

/** The session's endpoint; one that refuses when the session has none (cannot happen with every service up). */
export function syncEndpointOf(sessionId: string): SyncEndpoint {
  return {
    request(from, op) {
      const f = bySession.get(sessionId)
      if (f) return f.request(from, op)
      const message = new VtError(ErrorNames.internal, `session ${sessionId} has no sync service`).message
      return { reply: Promise.resolve({ ok: false, code: 'error', message }), cancel() {} }
    },
  }
}
