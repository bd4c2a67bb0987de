// The `sync` service (contract: src/protocol/sync.ts): per session, a forwarder that turns requests of host
// scripts and guests into `request` events for the session's controller, and a unix socket + `vt-sync`
// command for the processes this session starts (exec and spawn put them in the environment).
import { implement } from '../service.ts'
import { registerForwarder, SyncForwarder } from '../sync/forwarder.ts'
import { type HostSync, listenHostSync } from '../sync/hostSocket.ts'

/** Socket and bin dir by session, for exec and spawn. */
const hostSyncs = new Map<string, Promise<HostSync | undefined>>()

/** Environment for a process of the session: `vt-sync` on PATH and where it reaches the agent. */
export async function syncEnv(sessionId: string): Promise<Record<string, string>> {
  const hs = await hostSyncs.get(sessionId)
  if (!hs) return {}
  const path = process.env.PATH
  return { VT_SYNC_SOCKET: hs.socket, PATH: path ? `${hs.binDir}:${path}` : hs.binDir }
}

export const syncService = implement('sync', agent => session => {
  const forwarder = new SyncForwarder(
    e => {
      // Dropped while the link is down: the participant's own timeout (or its end) then settles it.
      session.emit('request', e)
      return true
    },
    e => session.emit('cancel', e),
  )
  const unregister = registerForwarder(session.id, forwarder)
  const hostSync = listenHostSync(session.dir, agent.name, forwarder, session.log).catch(e => {
    session.log.warn('vt-sync socket could not be created', { error: (e as Error).message })
    return undefined
  })
  hostSyncs.set(session.id, hostSync)
  session.onClose(async () => {
    unregister()
    hostSyncs.delete(session.id)
    forwarder.close('the session ended')
    ;(await hostSync)?.close()
  })
  return {
    reply: (id, reply) => forwarder.reply(id, reply),
  }
})
