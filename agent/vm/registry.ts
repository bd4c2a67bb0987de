// Every session's VmManager on this agent, for the services that reach a VM of another session: `vt console`
// attaches to a paused run's VM with that run's session id and secret (agent/services/console.ts).
import type { AgentContext } from '../service.ts'
import type { VmManager } from './manager.ts'

// Keyed by the agent's context: one process may host several agents (tests, the embedded cluster in-process).
const byAgent = new WeakMap<AgentContext, Map<string, VmManager>>()

export function sessionManagers(agent: AgentContext): Map<string, VmManager> {
  let map = byAgent.get(agent)
  if (!map) byAgent.set(agent, (map = new Map()))
  return map
}
