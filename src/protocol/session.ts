// The session itself, capacity reservations and the agent's log. Reservations are kept by the agent, so that
// every worker process (each with its own session) books against the same capacity and none overbooks a host.
import { z } from 'zod'
import { call, defineService, id } from './contract.ts'

export interface Capacity {
  memoryBytes: number
  cpus: number
}

/** A booking of capacity on a host: a reservation made by `cluster.select`, or a VM's (until it exits). */
export interface Reservation {
  id: string
  memoryBytes: number
  cpus: number
  /** The session that holds it; released when that session ends. */
  session: string
  kind: 'reservation' | 'vm'
  /** The VM's name (kind 'vm'). */
  label?: string
}

export interface CapacityStatus {
  /** What the host offers: `vt agent --capacity-memory/--capacity-cpus`, else the whole machine. */
  total: Capacity
  reserved: Capacity
  free: Capacity
  reservations: Reservation[]
}

export interface ResourceInfo {
  id: string
  kind: string
  label?: string
  pid?: number
  path?: string
  createdAt: number
}

export const session = defineService('session', {
  /** Renews the lease (WebSocket pings do too) and returns the session's remaining lease in ms. */
  heartbeat: call().returns<{ leaseMs: number }>(),
  /** What the session has created and will reap. */
  resources: call().returns<ResourceInfo[]>(),
  /** Ends the session now: reaps everything it created. */
  close: call().returns<void>(),
  /**
   * Books capacity, waiting up to `timeoutMs` (default 0) for it to free up; fails with CapacityError (code
   * 'CAPACITY') naming what is free. A VM created with `{ reservation: id }` takes the booking over.
   */
  reserve: call(
    z.strictObject({
      memoryBytes: z.number().int().min(0).optional(),
      cpus: z.number().int().min(0).optional(),
      timeoutMs: z.number().int().min(0).max(3_600_000).optional(),
    }),
  ).returns<Reservation>(),
  release: call(id).returns<boolean>(),
  capacity: call().returns<CapacityStatus>(),
  /** Agent log lines with timestamps in [sinceMs, untilMs]. */
  log: call(
    z.strictObject({
      sinceMs: z.number().optional(),
      untilMs: z.number().optional(),
      maxBytes: z
        .number()
        .int()
        .min(0)
        .max(64 * 1024 * 1024)
        .optional(),
    }),
  ).returns<string>(),
})
