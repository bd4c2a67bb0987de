// The sync server: barriers and shared keys for one run, held by the main process of `vt test` (the seeds'
// "sync server", built in). Requests come from owners (a worker process, or this process) with ids unique per
// owner. A barrier releases when `parties` arrivals came, from anyone; it then starts over under the same name.
// One party timing out or going away (its worker died, its QEMU was killed) breaks the barrier: everybody waiting
// there gets an error naming it instead of a hang. Keys keep every value shared under them for the run.
import type { Arrival, Participant, SyncOp, SyncReply } from '../protocol/sync.ts'

interface Pending {
  owner: string
  id: string
  from: Participant
  op: SyncOp
  at: number
  /** 'barrier "x"' or 'key "k"': where it waits, for the messages of others. */
  place: string
  resolve: (reply: SyncReply) => void
  onArrival?: (a: Arrival) => void
  timer?: NodeJS.Timeout
}

interface Barrier {
  parties: number
  arrivals: Pending[]
}

interface Shared {
  value: string
  who: string
  at: number
}

const key = (owner: string, id: string) => `${owner}\0${id}`

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`
}

export class SyncServer {
  private readonly pending = new Map<string, Pending>()
  private readonly barriers = new Map<string, Barrier>()
  private readonly keys = new Map<string, Shared[]>()
  private readonly keyWaiters = new Map<string, Set<Pending>>()
  private closed?: string

  /** Answers a request; the promise never rejects (failures are replies). */
  request(
    owner: string,
    id: string,
    from: Participant,
    op: SyncOp,
    onArrival?: (a: Arrival) => void,
  ): Promise<SyncReply> {
    return new Promise<SyncReply>(resolve => {
      if (this.closed) return resolve({ ok: false, code: 'error', message: this.closed })
      if (this.pending.has(key(owner, id)))
        return resolve({ ok: false, code: 'error', message: `sync request ${id} is already pending` })
      const p: Pending = { owner, id, from, op, at: Date.now(), place: '', resolve, onArrival }
      switch (op.op) {
        case 'barrier':
          return this.arrive(p, op.name, op.parties, op.timeoutMs)
        case 'send':
          this.share(op.key, op.value, from.label)
          return resolve({ ok: true })
        case 'wait':
        case 'waitAll':
          return this.waitKey(p, op.key, op.op === 'wait' ? 1 : op.count, op.timeoutMs)
        case 'role':
          return resolve({
            ok: false,
            code: 'error',
            message: `${from.label} has no role: it is not part of a role group (test.use({ roles }))`,
          })
      }
    })
  }

  /** The requester went away: its barrier breaks, its key wait is dropped. */
  cancel(owner: string, id: string, reason: string): void {
    const p = this.pending.get(key(owner, id))
    if (!p) return
    this.leave(p, `${p.from.label} left before it was released (${reason})`)
  }

  /** Everything an owner (a worker process) was waiting for: it died or stopped. */
  dropOwner(owner: string, reason: string): void {
    for (const p of [...this.pending.values()]) if (p.owner === owner) this.cancel(owner, p.id, reason)
  }

  /** The run ends: whatever still waits fails with `reason`; later requests too. */
  close(reason: string): void {
    this.closed = reason
    for (const p of [...this.pending.values()]) this.finish(p, { ok: false, code: 'error', message: reason })
  }

  /** What waits where (for errors and the bench). */
  describePending(except?: Pending): string[] {
    return [...this.pending.values()].filter(p => p !== except).map(p => `${p.from.label} at ${p.place}`)
  }

  private track(p: Pending, place: string, timeoutMs: number | undefined, onTimeout: () => void): void {
    p.place = place
    this.pending.set(key(p.owner, p.id), p)
    if (timeoutMs !== undefined && timeoutMs > 0) p.timer = setTimeout(onTimeout, timeoutMs)
  }

  private finish(p: Pending, reply: SyncReply): void {
    if (this.pending.get(key(p.owner, p.id)) !== p) return
    this.pending.delete(key(p.owner, p.id))
    clearTimeout(p.timer)
    p.resolve(reply)
  }

  // ---------- barriers ----------

  private arrive(p: Pending, name: string, parties: number, timeoutMs: number | undefined): void {
    let b = this.barriers.get(name)
    if (b && b.parties !== parties) {
      const first = b.arrivals[0]
      p.resolve({
        ok: false,
        code: 'error',
        message: `barrier "${name}": ${p.from.label} says ${parties} parties, but ${first.from.label} arrived first saying ${b.parties}`,
      })
      return
    }
    if (!b) this.barriers.set(name, (b = { parties, arrivals: [] }))
    const barrier = b
    this.track(p, `barrier "${name}"`, timeoutMs, () => this.timeOut(p, name, barrier, timeoutMs ?? 0))
    barrier.arrivals.push(p)
    // The newcomer hears of everyone so far (itself included), the others of the newcomer: each party sees
    // every arrival once, in order.
    for (const a of barrier.arrivals) p.onArrival?.({ who: a.from.label, at: a.at })
    const arrival = { who: p.from.label, at: p.at }
    for (const other of barrier.arrivals) if (other !== p) other.onArrival?.(arrival)
    if (barrier.arrivals.length < parties) return
    this.barriers.delete(name)
    const arrivals = barrier.arrivals.map(a => ({ who: a.from.label, at: a.at }))
    for (const a of barrier.arrivals) this.finish(a, { ok: true, arrivals })
  }

  private arrivedText(b: Barrier): string {
    const t0 = b.arrivals[0]?.at ?? Date.now()
    const list = b.arrivals.map(a => `${a.from.label} (+${seconds(a.at - t0)})`).join(', ')
    return `${b.arrivals.length} of ${b.parties} arrived${list ? `: ${list}` : ''}; missing ${b.parties - b.arrivals.length}`
  }

  private elsewhere(b: Barrier): string {
    const inside = new Set(b.arrivals)
    const others = [...this.pending.values()].filter(p => !inside.has(p)).map(p => `${p.from.label} at ${p.place}`)
    if (others.length === 0) return ''
    const shown = others.slice(0, 10).join('; ')
    return ` (waiting elsewhere: ${shown}${others.length > 10 ? `; and ${others.length - 10} more` : ''})`
  }

  private timeOut(p: Pending, name: string, b: Barrier, timeoutMs: number): void {
    if (this.barriers.get(name) !== b) return
    const state = `${this.arrivedText(b)}${this.elsewhere(b)}`
    this.breakBarrier(name, b, p, `${p.from.label} timed out after ${seconds(timeoutMs)}; ${state}`, 'timeout')
  }

  /** Every party of `b` fails: `cause` with `causeCode`, the others as 'broken'. */
  private breakBarrier(name: string, b: Barrier, cause: Pending, why: string, causeCode: 'timeout' | 'error'): void {
    this.barriers.delete(name)
    for (const a of b.arrivals) {
      const message = `barrier "${name}" ${a === cause ? 'failed' : 'broken'}: ${why}`
      this.finish(a, { ok: false, code: a === cause ? causeCode : 'broken', message })
    }
  }

  private leave(p: Pending, why: string): void {
    if (p.op.op === 'barrier') {
      const name = p.op.name
      const b = this.barriers.get(name)
      if (b?.arrivals.includes(p)) {
        this.breakBarrier(name, b, p, `${why}; ${this.arrivedText(b)}`, 'error')
        return
      }
    } else if (p.op.op === 'wait' || p.op.op === 'waitAll') {
      this.keyWaiters.get(p.op.key)?.delete(p)
    }
    this.finish(p, { ok: false, code: 'error', message: why })
  }

  // ---------- keys ----------

  private share(name: string, value: string, who: string): void {
    let list = this.keys.get(name)
    if (!list) this.keys.set(name, (list = []))
    list.push({ value, who, at: Date.now() })
    for (const w of [...(this.keyWaiters.get(name) ?? [])]) this.tryKey(w)
  }

  private waitKey(p: Pending, name: string, count: number, timeoutMs: number | undefined): void {
    const place = count === 1 ? `key "${name}"` : `key "${name}" (${count} values)`
    this.track(p, place, timeoutMs, () => {
      this.keyWaiters.get(name)?.delete(p)
      const have = this.keys.get(name)?.length ?? 0
      const known = [...this.keys.keys()]
      const sharedText = known.length ? `keys shared so far: ${known.slice(0, 20).join(', ')}` : 'no key was shared yet'
      const others = this.describePending(p)
      this.finish(p, {
        ok: false,
        code: 'timeout',
        message: `${p.from.label} timed out after ${seconds(timeoutMs ?? 0)} waiting for ${place}: ${have} of ${count} shared; ${sharedText}${
          others.length ? `; waiting elsewhere: ${others.slice(0, 10).join('; ')}` : ''
        }`,
      })
    })
    let set = this.keyWaiters.get(name)
    if (!set) this.keyWaiters.set(name, (set = new Set()))
    set.add(p)
    this.tryKey(p)
  }

  private tryKey(p: Pending): void {
    if (p.op.op !== 'wait' && p.op.op !== 'waitAll') return
    const list = this.keys.get(p.op.key) ?? []
    const count = p.op.op === 'wait' ? 1 : p.op.count
    if (list.length < count) return
    this.keyWaiters.get(p.op.key)?.delete(p)
    const last = list[list.length - 1]
    const arrivals = list.map(s => ({ who: s.who, at: s.at }))
    if (p.op.op === 'wait') this.finish(p, { ok: true, value: last.value, arrivals: [arrivals[arrivals.length - 1]] })
    else this.finish(p, { ok: true, values: list.map(s => s.value), arrivals })
  }
}
