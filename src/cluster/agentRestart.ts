// Who can restart a host's agent for cluster.faults.restartAgent: whoever started the agents. In `vt test` that is
// the main process (embedded clusters): the worker registers a restarter that asks it over IPC. A script that
// started a cluster itself passes `restartAgent` to Cluster.connect. Remote hosts' agents: nobody here can.
import type { ClusterReplyMessage, ClusterRequestMessage } from '../runner/ipc.ts'

export type AgentRestarter = (host: string) => Promise<void>

let current: AgentRestarter | undefined

export function setAgentRestarter(restarter: AgentRestarter | undefined): void {
  current = restarter
}

export function agentRestarter(): AgentRestarter | undefined {
  return current
}

/** In a worker: registers a restarter that asks the main process; `handle` takes its answers. */
export function ipcAgentRestarter(send: (m: ClusterRequestMessage) => void): { handle(m: ClusterReplyMessage): void } {
  const waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>()
  let n = 0
  setAgentRestarter(
    host =>
      new Promise<void>((resolve, reject) => {
        const id = `c${++n}`
        waiting.set(id, { resolve, reject })
        send({ type: 'cluster', id, op: 'restartAgent', host })
      }),
  )
  return {
    handle(m) {
      const w = waiting.get(m.id)
      waiting.delete(m.id)
      if (m.error === undefined) w?.resolve()
      else w?.reject(new Error(m.error))
    },
  }
}
