// Barriers and keys as spec code uses them (`cluster.barrier`, `cluster.share`, `cluster.wait`): each call
// is a test step, a barrier's step gets one sub-step per arrival ("who arrived when"), and a failure is a
// SyncError whose message names who arrived and who is missing.
import { AsyncLocalStorage } from 'node:async_hooks'
import { VtError } from '../protocol/errors.ts'
import type { Arrival, Participant, SyncFailure, SyncOp, SyncReply } from '../protocol/sync.ts'
import { apiLocation, apiStep, currentTestTitle } from '../runner/apiStep.ts'
import type { Location } from '../runner/results.ts'
import { maybeWorkerContext } from '../runner/workerContext.ts'
import { syncTransport } from './transport.ts'

export interface BarrierOptions {
  /** How many arrivals release the barrier: spec code, host scripts (`vt-sync`) and guests together. */
  parties: number
  /** Milliseconds to wait; then the barrier breaks for every party. Default: no limit (the test's timeout). */
  timeout?: number
  /** Hears of every arrival (this one included) while waiting, e.g. to act once a guest is there. */
  onArrival?: (arrival: Arrival) => void
}

export interface WaitOptions {
  timeout?: number
}

export class SyncError extends VtError {
  constructor(
    readonly failure: SyncFailure,
    message: string,
  ) {
    super(failure === 'timeout' ? 'SyncTimeoutError' : 'SyncError', message, { code: failure.toUpperCase() })
  }
}

/** Who the running spec code is, for the other parties' messages. */
export function specParticipant(): Participant {
  const title = currentTestTitle()
  const worker = maybeWorkerContext()?.workerIndex
  const where = worker === undefined ? `pid ${process.pid}` : `worker ${worker}`
  return { kind: 'spec', label: title ? `test "${title}" (${where})` : `spec code (${where})` }
}

/** Validates a request against the contract's schema (loaded on first use: most workers never sync). */
async function check(op: SyncOp): Promise<SyncOp> {
  const { syncOp } = await import('../protocol/sync.ts')
  const parsed = syncOp.safeParse(op)
  if (parsed.success) return parsed.data
  const what = 'name' in op ? `barrier "${op.name}"` : 'key' in op ? `key "${op.key}"` : op.op
  const detail = parsed.error.issues.map(i => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ')
  throw new SyncError('error', `${what}: ${detail}`)
}

/** Requests made by spec code of this process and not answered yet. */
const specRequests = new Set<string>()

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`
}

/**
 * Sends one request as a step. Arrivals reported by the server become sub-steps. If the step is abandoned
 * (the test timed out), the request is withdrawn when the test's fixtures are torn down (`withdrawAll`).
 */
async function run(
  title: string,
  op: SyncOp,
  location: Location,
  listener?: (a: Arrival) => void,
): Promise<SyncReply & { ok: true }> {
  const transport = syncTransport()
  const inTest = currentTestTitle() !== undefined
  const body = async () => {
    const inStep = AsyncLocalStorage.snapshot()
    let first: number | undefined
    const onArrival = (a: Arrival) => {
      first ??= a.at
      const t = `arrived +${seconds(a.at - first)}: ${a.who}`
      if (inTest) inStep(() => void apiStep(t, async () => {}, { location }).catch(() => {}))
      listener?.(a)
    }
    const { id, reply } = transport.request(specParticipant(), op, onArrival)
    specRequests.add(id)
    const r = await reply.finally(() => specRequests.delete(id))
    if (!r.ok) throw new SyncError(r.code, r.message)
    if (inTest && op.op === 'wait' && r.arrivals?.[0]) {
      const a = r.arrivals[0]
      await apiStep(`shared by ${a.who}`, async () => {}, { location })
    }
    return r
  }
  return apiStep(title, body, { location })
}

export async function barrier(name: string, options: BarrierOptions): Promise<Arrival[]> {
  if (!options || typeof options.parties !== 'number')
    throw new SyncError('error', `barrier "${name}": give the number of parties: barrier(name, { parties: 3 })`)
  const location = apiLocation()
  const op = await check({ op: 'barrier', name, parties: options.parties, timeoutMs: options.timeout })
  const r = await run(`barrier "${name}" (${options.parties} parties)`, op, location, options.onArrival)
  return r.arrivals ?? []
}

export async function share(key: string, value: string | number | boolean): Promise<void> {
  const location = apiLocation()
  const op = await check({ op: 'send', key, value: String(value) })
  await run(`share "${key}"`, op, location)
}

export async function wait(key: string, options: WaitOptions = {}): Promise<string> {
  const location = apiLocation()
  const op = await check({ op: 'wait', key, timeoutMs: options.timeout })
  const r = await run(`wait "${key}"`, op, location)
  return r.value ?? ''
}

export async function waitAll(key: string, count: number, options: WaitOptions = {}): Promise<string[]> {
  const location = apiLocation()
  const op = await check({ op: 'waitAll', key, count, timeoutMs: options.timeout })
  const r = await run(`wait for ${count} values of "${key}"`, op, location)
  return r.values ?? []
}

/** Withdraws this process's unanswered spec requests (the test that made them ended). */
export function withdrawAll(reason: string): void {
  const transport = syncTransport()
  for (const id of [...specRequests]) transport.cancel(id, reason)
}
