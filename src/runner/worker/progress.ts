// Progress reports of a test's steps, checked and throttled in the worker: long work may report on every chunk
// it copies, but the main process (and a terminal) needs only a few updates a second. A report held back by
// the throttle is sent when its interval is over, so the last state is never lost; a new message goes at once.
import type { Progress } from '../reporterApi.ts'

/** Minimum time between two reports of one step (a changed message is sent at once). */
export const PROGRESS_INTERVAL_MS = 250

function finite(name: string, value: unknown, min: number, max = Number.POSITIVE_INFINITY): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
    throw new TypeError(
      `progress: ${name} must be a number ${max === Number.POSITIVE_INFINITY ? `>= ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(value)}`,
    )
  return value
}

/** Checks a report and fills in `percent` from bytes/totalBytes; throws a TypeError naming the bad field. */
export function normalizeProgress(progress: Progress): Progress {
  if (!progress || typeof progress !== 'object')
    throw new TypeError(`progress: expected { message?, percent?, bytes?, totalBytes? }, got ${String(progress)}`)
  const { message } = progress
  if (message !== undefined && typeof message !== 'string')
    throw new TypeError(`progress: message must be a string, got ${JSON.stringify(message)}`)
  const bytes = finite('bytes', progress.bytes, 0)
  const totalBytes = finite('totalBytes', progress.totalBytes, 0)
  let percent = finite('percent', progress.percent, 0, 100)
  if (percent === undefined && bytes !== undefined && totalBytes)
    percent = Math.min(100, Math.round((bytes / totalBytes) * 1000) / 10)
  const out: Progress = {}
  if (message) out.message = message.length > 200 ? `${message.slice(0, 197)}...` : message
  if (percent !== undefined) out.percent = percent
  if (bytes !== undefined) out.bytes = bytes
  if (totalBytes !== undefined) out.totalBytes = totalBytes
  return out
}

interface Slot {
  lastSent: number
  lastMessage?: string
  pending?: Progress
  timer?: NodeJS.Timeout
}

export class ProgressThrottle {
  private readonly slots = new Map<string, Slot>()

  constructor(
    private readonly send: (stepId: string | undefined, progress: Progress) => void,
    private readonly intervalMs = PROGRESS_INTERVAL_MS,
  ) {}

  report(stepId: string | undefined, progress: Progress): void {
    const p = normalizeProgress(progress)
    const key = stepId ?? ''
    let slot = this.slots.get(key)
    if (!slot) this.slots.set(key, (slot = { lastSent: 0 }))
    const now = Date.now()
    const newMessage = p.message !== undefined && p.message !== slot.lastMessage
    if (newMessage || now - slot.lastSent >= this.intervalMs) {
      this.flush(key, slot, p)
      return
    }
    slot.pending = p
    slot.timer ??= setTimeout(
      () => {
        slot.timer = undefined
        if (slot.pending) this.flush(key, slot, slot.pending)
      },
      this.intervalMs - (now - slot.lastSent),
    )
    slot.timer.unref?.()
  }

  /** The step ended: what it still held back is of no interest any more. */
  forget(stepId: string): void {
    const slot = this.slots.get(stepId)
    if (slot?.timer) clearTimeout(slot.timer)
    this.slots.delete(stepId)
  }

  clear(): void {
    for (const key of [...this.slots.keys()]) this.forget(key)
  }

  private flush(key: string, slot: Slot, p: Progress): void {
    if (slot.timer) clearTimeout(slot.timer)
    slot.timer = undefined
    slot.pending = undefined
    slot.lastSent = Date.now()
    if (p.message !== undefined) slot.lastMessage = p.message
    this.send(key || undefined, p)
  }
}
