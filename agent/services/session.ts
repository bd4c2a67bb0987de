// session: lease heartbeats, listing and closing, capacity reservations, and the agent's log. Reservations
// live in the agent's ledger (agent/capacity.ts) so that every controller process books against the same numbers.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sliceLog } from '../log.ts'
import { implement } from '../service.ts'

export const sessionService = implement('session', agent => {
  const ledger = agent.capacity
  return (ctx, session) => {
    const mine = new Set<string>()
    // Everything the session booked goes with it (its VMs release theirs as they are destroyed, too).
    ctx.onClose(() => ledger.releaseSession(session.id))
    return {
      heartbeat: () => {
        session.touch()
        return { leaseMs: session.remainingMs() }
      },
      resources: () =>
        [...session.records.values()].map(
          (r: Record<string, unknown> & { id: string; kind: string; createdAt: number }) => ({
            id: r.id,
            kind: r.kind,
            label: typeof r.label === 'string' ? r.label : undefined,
            pid: typeof r.pid === 'number' ? r.pid : undefined,
            path: typeof r.path === 'string' ? r.path : undefined,
            createdAt: r.createdAt,
          }),
        ),
      close: async () => {
        await session.close('closed by the controller', { keepConnection: true })
      },
      reserve: async req => {
        const r = await ledger.book(
          { memoryBytes: req.memoryBytes ?? 0, cpus: req.cpus ?? 0 },
          { session: session.id, kind: 'reservation' },
          { timeoutMs: req.timeoutMs, signal: ctx.signal, what: 'a reservation' },
        )
        mine.add(r.id)
        return r
      },
      release: id => {
        if (!mine.has(id)) return false
        mine.delete(id)
        return ledger.release(id)
      },
      capacity: () => ledger.status(),
      log: async req => {
        const text = await readFile(join(agent.stateDir, 'agent.log'), 'utf8').catch(() => '')
        const slice = sliceLog(text, req.sinceMs, req.untilMs)
        const max = req.maxBytes ?? 4 * 1024 * 1024
        return slice.length > max ? slice.slice(slice.length - max) : slice
      },
    }
  }
})
