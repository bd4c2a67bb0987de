// Coordination (barriers and shared keys) as data: what a participant asks, who it is, what it gets back. The
// main process of `vt test` holds the state; spec code reaches it over the worker's IPC channel, host scripts
// and guests through their agent (the `sync` service below: the agent emits `request`, the controller answers
// with `reply`).
import { z } from 'zod'
import { call, defineService, event, id } from './contract.ts'

/** Barrier and key names: short, printable, safe in a shell word and a log line. */
export const SYNC_NAME = /^[A-Za-z0-9._:@/+-]{1,128}$/
export const MAX_SYNC_VALUE_BYTES = 64 * 1024
export const MAX_PARTIES = 10_000

const name = z.string().regex(SYNC_NAME, 'names are 1-128 characters of A-Z a-z 0-9 . _ : @ / + -')
const timeoutMs = z
  .number()
  .int()
  .min(0)
  .max(7 * 86_400_000)
  .optional()

export const syncOp = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('barrier'), name, parties: z.number().int().min(1).max(MAX_PARTIES), timeoutMs }),
  z.strictObject({ op: z.literal('send'), key: name, value: z.string().max(MAX_SYNC_VALUE_BYTES) }),
  z.strictObject({ op: z.literal('wait'), key: name, timeoutMs }),
  z.strictObject({
    op: z.literal('waitAll'),
    key: name,
    count: z.number().int().min(1).max(MAX_PARTIES),
    timeoutMs,
  }),
  z.strictObject({ op: z.literal('role') }),
])

export type SyncOp = z.infer<typeof syncOp>

/** Who takes part: spec code in a worker, a process on a host, a program in a guest. */
export interface Participant {
  kind: 'spec' | 'host' | 'vm'
  /** For messages: 'VM c1 on host h2', 'host h1: `./server.sh` (pid 812)', 'worker 1: «netperf»'. */
  label: string
  host?: string
  vm?: string
}

export interface Arrival {
  who: string
  /** Epoch ms. */
  at: number
}

export type SyncFailure = 'timeout' | 'broken' | 'error'

export type SyncReply =
  | {
      ok: true
      /** wait: the value; role: "<role> <index>". */
      value?: string
      /** waitAll: every value shared under the key so far. */
      values?: string[]
      /** barrier: who arrived when; wait: who shared the value. */
      arrivals?: Arrival[]
    }
  | { ok: false; code: SyncFailure; message: string }

/** vt-sync's exit codes. */
export const SYNC_EXIT = { ok: 0, error: 1, timeout: 2, usage: 64 } as const

export function exitCodeOf(reply: SyncReply): number {
  if (reply.ok) return SYNC_EXIT.ok
  return reply.code === 'timeout' ? SYNC_EXIT.timeout : SYNC_EXIT.error
}

export interface SyncRequestEvent {
  /** Unique in the session; the controller answers with `sync.reply(id, reply)`. */
  id: string
  from: Participant
  request: SyncOp
}

/** The participant went away before its answer (process exited, QEMU died, exec timed out). */
export interface SyncCancelEvent {
  id: string
  reason: string
}

const reply = z.union([
  z.strictObject({
    ok: z.literal(true),
    value: z.string().optional(),
    values: z.array(z.string()).optional(),
    arrivals: z.array(z.strictObject({ who: z.string(), at: z.number() })).optional(),
  }),
  z.strictObject({ ok: z.literal(false), code: z.enum(['timeout', 'broken', 'error']), message: z.string() }),
])

export const sync = defineService(
  'sync',
  {
    /** The answer to a `request` event. False when the request is no longer pending (cancelled). */
    reply: call(id, reply).returns<boolean>(),
  },
  {
    request: event<SyncRequestEvent>(),
    cancel: event<SyncCancelEvent>(),
  },
)
