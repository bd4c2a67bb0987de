// session: lease heartbeats, listing and closing, capacity reservations, and the agent's log. Reservations
// live in the agent so that every controller process books against the same numbers.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { Capacity, Reservation } from '../../src/protocol/session.ts'
import { sliceLog } from '../log.ts'
import { implement } from '../service.ts'

export const sessionService = implement('session', agent => {
  const total: Capacity = {
    memoryBytes: agent.capacity.memoryBytes ?? os.totalmem(),
    cpus: agent.capacity.cpus ?? os.availableParallelism(),
  }
  const reservations = new Map<string, Reservation>()
  const reserved = (): Capacity => {
    let memoryBytes = 0
    let cpus = 0
    for (const r of reservations.values()) {
      memoryBytes += r.memoryBytes
      cpus += r.cpus
    }
    return { memoryBytes, cpus }
  }

  return (ctx, session) => {
    const mine = new Set<string>()
    ctx.onClose(() => {
      for (const id of mine) reservations.delete(id)
    })
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
      reserve: req => {
        const want: Capacity = { memoryBytes: req.memoryBytes ?? 0, cpus: req.cpus ?? 0 }
        const used = reserved()
        const free = { memoryBytes: total.memoryBytes - used.memoryBytes, cpus: total.cpus - used.cpus }
        if (want.memoryBytes > free.memoryBytes || want.cpus > free.cpus) {
          throw new VtError(
            ErrorNames.capacity,
            `not enough free capacity: asked for ${want.memoryBytes} bytes and ${want.cpus} cpus, free are ${free.memoryBytes} bytes and ${free.cpus} cpus`,
            { code: 'CAPACITY' },
          )
        }
        const r: Reservation = { id: `res-${randomBytes(6).toString('hex')}`, ...want, session: session.id }
        reservations.set(r.id, r)
        mine.add(r.id)
        return r
      },
      release: id => {
        if (!mine.has(id)) return false
        mine.delete(id)
        return reservations.delete(id)
      },
      capacity: () => {
        const used = reserved()
        return {
          total,
          reserved: used,
          free: { memoryBytes: total.memoryBytes - used.memoryBytes, cpus: total.cpus - used.cpus },
          reservations: [...reservations.values()],
        }
      },
      log: async req => {
        const text = await readFile(join(agent.stateDir, 'agent.log'), 'utf8').catch(() => '')
        const slice = sliceLog(text, req.sinceMs, req.untilMs)
        const max = req.maxBytes ?? 4 * 1024 * 1024
        return slice.length > max ? slice.slice(slice.length - max) : slice
      },
    }
  }
})
