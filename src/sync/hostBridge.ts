// The controller's end of the agents' `sync` service: requests of host scripts and guests (events) go to the
// run's sync server through this process's transport, answers go back with `sync.reply`. `vt-sync role` is
// answered here from the roles the group fixture assigned.
import type { Host } from '../cluster/host.ts'
import type { SyncCancelEvent, SyncReply, SyncRequestEvent } from '../protocol/sync.ts'
import { syncTransport } from './transport.ts'

/** Roles of VMs by VM name (unique in a worker, kept across migrations), set by the group fixture. */
export type RoleBook = Map<string, { role: string; index: number }>

/** Serves one host's sync requests; returns the function that stops it and withdraws what is pending. */
export function bridgeHost(host: Host, roles: RoleBook): (reason: string) => void {
  const transport = syncTransport()
  const pending = new Map<string, string>()
  const answer = (id: string, reply: SyncReply) =>
    void host
      .service('sync')
      .reply(id, reply)
      .catch(() => {})
  const offRequest = host.on('sync', 'request', (e: SyncRequestEvent) => {
    if (e.request.op === 'role') {
      const r = e.from.vm ? roles.get(e.from.vm) : undefined
      return answer(
        e.id,
        r
          ? { ok: true, value: `${r.role} ${r.index}` }
          : { ok: false, code: 'error', message: `${e.from.label} has no role: it is not part of a role group` },
      )
    }
    const { id, reply } = transport.request(e.from, e.request)
    pending.set(e.id, id)
    void reply.then(r => {
      pending.delete(e.id)
      answer(e.id, r)
    })
  })
  const offCancel = host.on('sync', 'cancel', (e: SyncCancelEvent) => {
    const id = pending.get(e.id)
    if (id) transport.cancel(id, e.reason)
  })
  return reason => {
    offRequest()
    offCancel()
    for (const id of pending.values()) transport.cancel(id, reason)
    pending.clear()
  }
}
