// `node --import tsx reap-state.ts <state-dir> <agent-pid>:<start-time>`: run by the keeper (keeper.ts) after
// its agent died without stopping. Reaps the sessions the agent left in its state dir, unless another agent
// has taken the state dir since (it reaps at its own start). Holds the state dir's lock while it works, marked
// as a reaper so that an agent starting meanwhile waits for it instead of failing.
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { isSameProcess, startTimeOf } from '../src/util/proc.ts'
import { createLogger } from './log.ts'
import { type FaultRecord, undoFault } from './net/faults.ts'
import { destroySegment } from './net/segment.ts'
import { deleteLink } from './net/tap.ts'
import { SessionStore } from './sessions.ts'
import { poolReapers } from './storage/index.ts'

const [stateDir, agentId] = process.argv.slice(2)
const [agentPid, agentStart] = (agentId ?? '').split(':').map(Number)
const log = createLogger(join(stateDir, 'agent.log'), { quiet: true, prefix: 'keeper' })
const lockFile = join(stateDir, 'agent.lock')

let lock: { pid: number; startTime: number } | undefined
try {
  lock = JSON.parse(readFileSync(lockFile, 'utf8'))
} catch {}
if (!lock || lock.pid !== agentPid || lock.startTime !== agentStart) {
  // Stopped cleanly (no lock) or already replaced by a new agent, which reaped at its start.
  process.exit(0)
}
// The keeper saw the pipe close; the agent may still be exiting. Wait until it is gone.
for (let i = 0; i < 200 && isSameProcess(agentPid, agentStart); i++) await new Promise(r => setTimeout(r, 10))
writeFileSync(lockFile, JSON.stringify({ pid: process.pid, startTime: startTimeOf(process.pid), reaper: true }))
try {
  const started = Date.now()
  const store = new SessionStore(stateDir, log)
  // The kinds services register at their setup (which this small process does not run): host network state.
  store.registerReaper('fault', async r => undoFault((r as unknown as { data: FaultRecord }).data))
  store.registerReaper('network', async r => destroySegment((r as unknown as { vni: number }).vni))
  store.registerReaper('link', async r => deleteLink((r as unknown as { name: string }).name))
  for (const [kind, reaper] of Object.entries(poolReapers())) store.registerReaper(kind, reaper)
  const n = await store.reapLeftovers()
  log.warn('agent died without stopping; its sessions were reaped by its keeper', {
    agentPid,
    resources: n,
    ms: Date.now() - started,
  })
} finally {
  rmSync(lockFile, { force: true })
}
