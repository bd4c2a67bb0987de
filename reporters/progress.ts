// Progress of long work (image builds, boots, migrations, copies) as terminal text, and when a reporter that
// cannot rewrite lines (CI logs) should print another line: when the message changes, when the percentage
// passes a quarter, and otherwise at most every 30 s, so that a log shows the work is alive without flooding.
import type { Progress } from '../src/runner/reporterApi.ts'
import { formatDuration } from './base.ts'

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`
}

/** `building the tiny image 42% (1.2 MiB/3.0 MiB) 12.0s` */
export function formatProgress(p: Progress, elapsedMs?: number): string {
  const parts: string[] = []
  if (p.message) parts.push(p.message)
  if (p.percent !== undefined)
    parts.push(`${Number.isInteger(p.percent) ? p.percent : p.percent.toFixed(p.percent < 10 ? 1 : 0)}%`)
  if (p.bytes !== undefined)
    parts.push(p.totalBytes ? `(${size(p.bytes)}/${size(p.totalBytes)})` : `(${size(p.bytes)})`)
  if (elapsedMs !== undefined) parts.push(formatDuration(elapsedMs))
  return parts.join(' ')
}

const QUIET_MS = 30_000

/** Decides, per step, whether a progress report is worth a line of its own in a log. */
export class SparseProgress {
  private readonly last = new Map<unknown, { message?: string; quarter: number; at: number }>()

  shouldPrint(key: unknown, p: Progress, now = Date.now()): boolean {
    const quarter = p.percent === undefined ? -1 : Math.floor(p.percent / 25)
    const prev = this.last.get(key)
    const due =
      !prev ||
      (p.message !== undefined && p.message !== prev.message) ||
      quarter > prev.quarter ||
      now - prev.at >= QUIET_MS
    if (due) this.last.set(key, { message: p.message ?? prev?.message, quarter, at: now })
    return due
  }

  forget(key: unknown): void {
    this.last.delete(key)
  }
}
