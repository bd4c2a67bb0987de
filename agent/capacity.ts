// The host's capacity ledger: the one place that decides whether a reservation or a VM fits. One per agent,
// shared by every session, so parallel controllers and workers never overbook a host. VMs book when they are
// created and release when they are destroyed or their QEMU exits (so a migration moves the booking: the
// destination books, the source releases when it is destroyed). Waiters are served first-fit on every release.
import { randomBytes } from 'node:crypto'
import { ErrorNames, VtError } from '../src/protocol/errors.ts'
import type { Capacity, CapacityStatus, Reservation } from '../src/protocol/session.ts'
import { describeFree, describeNeed, formatBytes, plural } from '../src/util/capacity.ts'

export interface BookingOwner {
  session: string
  kind: Reservation['kind']
  label?: string
}

export interface WaitOptions {
  /** How long to wait for capacity to free up (0: fail at once). */
  timeoutMs?: number
  /** Ends the wait (the session went away). */
  signal?: AbortSignal
  /** What asks, for the error ('VM web1', 'a reservation'). */
  what: string
}

interface Waiter {
  want: Capacity
  owner: BookingOwner
  resolve: (b: Reservation) => void
}

export class CapacityLedger {
  private readonly bookings = new Map<string, Reservation>()
  private readonly waiters: Waiter[] = []

  constructor(
    readonly host: string,
    readonly total: Capacity,
  ) {}

  status(): CapacityStatus {
    const reserved = this.reserved()
    return {
      total: { ...this.total },
      reserved,
      free: { memoryBytes: this.total.memoryBytes - reserved.memoryBytes, cpus: this.total.cpus - reserved.cpus },
      reservations: [...this.bookings.values()].map(b => ({ ...b })),
    }
  }

  /** Books `want` now if it fits, else waits up to the timeout; throws a CapacityError naming what is free. */
  async book(want: Capacity, owner: BookingOwner, options: WaitOptions): Promise<Reservation> {
    this.mustEverFit(want, options.what)
    const now = this.tryBook(want, owner)
    if (now) return now
    const timeoutMs = options.timeoutMs ?? 0
    if (timeoutMs <= 0 || options.signal?.aborted) throw this.refusal(want, options.what)
    return new Promise<Reservation>((resolve, reject) => {
      const waiter: Waiter = {
        want,
        owner,
        resolve: b => {
          done()
          resolve(b)
        },
      }
      const timer = setTimeout(() => {
        done()
        reject(this.refusal(want, options.what, timeoutMs))
      }, timeoutMs)
      const onAbort = () => {
        done()
        reject(new VtError(ErrorNames.capacity, `${options.what} stopped waiting for capacity: its session ended`))
      }
      const done = () => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        const i = this.waiters.indexOf(waiter)
        if (i >= 0) this.waiters.splice(i, 1)
      }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(waiter)
    })
  }

  /**
   * Turns a reservation of `session` into a VM's booking of `want` (growing or shrinking it, at once: what was
   * reserved was meant for this VM). Throws when the reservation is not the session's or the growth does not fit.
   */
  takeOver(id: string, want: Capacity, owner: BookingOwner, what: string): Reservation {
    const r = this.bookings.get(id)
    if (!r || r.session !== owner.session || r.kind !== 'reservation') {
      throw new VtError(
        ErrorNames.notFound,
        `${what}: no reservation ${id} of this session on host ${this.host} (released already, or another session's)`,
        { code: 'ENOENT' },
      )
    }
    this.mustEverFit(want, what)
    const free = this.status().free
    const grow = { memoryBytes: want.memoryBytes - r.memoryBytes, cpus: want.cpus - r.cpus }
    if (grow.memoryBytes > free.memoryBytes || grow.cpus > free.cpus) {
      throw new VtError(
        ErrorNames.capacity,
        `${what} needs ${describeNeed(want)}, more than its reservation ${id} (${describeNeed(r)}), and the rest ` +
          `does not fit: ${describeFree(this.host, this.status())}`,
        { code: 'CAPACITY' },
      )
    }
    // A new id: releasing the old reservation later (the group fixture's teardown) must not free the VM's.
    this.bookings.delete(id)
    const b: Reservation = { id: newId(), ...want, ...owner }
    this.bookings.set(b.id, b)
    if (grow.memoryBytes < 0 || grow.cpus < 0) this.serveWaiters()
    return { ...b }
  }

  release(id: string): boolean {
    if (!this.bookings.delete(id)) return false
    this.serveWaiters()
    return true
  }

  /** Drops every booking of a session (it ended). */
  releaseSession(session: string): void {
    let any = false
    for (const [id, b] of this.bookings) {
      if (b.session !== session) continue
      this.bookings.delete(id)
      any = true
    }
    if (any) this.serveWaiters()
  }

  private tryBook(want: Capacity, owner: BookingOwner): Reservation | undefined {
    const free = this.status().free
    if (want.memoryBytes > free.memoryBytes || want.cpus > free.cpus) return undefined
    const b: Reservation = { id: newId(), ...want, ...owner }
    this.bookings.set(b.id, b)
    return { ...b }
  }

  private serveWaiters(): void {
    for (const w of [...this.waiters]) {
      const b = this.tryBook(w.want, w.owner)
      if (b) w.resolve(b)
    }
  }

  private reserved(): Capacity {
    let memoryBytes = 0
    let cpus = 0
    for (const r of this.bookings.values()) {
      memoryBytes += r.memoryBytes
      cpus += r.cpus
    }
    return { memoryBytes, cpus }
  }

  /** More than the host offers at all never fits: say so at once instead of waiting. */
  private mustEverFit(want: Capacity, what: string): void {
    if (want.memoryBytes <= this.total.memoryBytes && want.cpus <= this.total.cpus) return
    throw new VtError(
      ErrorNames.capacity,
      `${what} needs ${describeNeed(want)}, but host ${this.host} offers only ${formatBytes(this.total.memoryBytes)} ` +
        `and ${plural(this.total.cpus, 'cpu')} in all: ask for less, or give the host more capacity ` +
        '(cluster.capacity, or vt agent --capacity-memory/--capacity-cpus)',
      { code: 'CAPACITY' },
    )
  }

  private refusal(want: Capacity, what: string, waitedMs?: number): VtError {
    const waited = waitedMs ? ` after waiting ${Math.round(waitedMs / 100) / 10} s` : ''
    return new VtError(
      ErrorNames.capacity,
      `${what} needs ${describeNeed(want)}${waited}: ${describeFree(this.host, this.status())}`,
      { code: 'CAPACITY' },
    )
  }
}

function newId(): string {
  return `res-${randomBytes(6).toString('hex')}`
}
