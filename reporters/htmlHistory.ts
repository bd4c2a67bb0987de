// The html report's history: a summary of each of the last N runs (totals, and per test its outcome and
// duration) kept in history.json next to index.html. Each report reads it, appends its own run (replacing an
// entry of the same run, as when `vt merge-reports` writes the same shards again), keeps the newest N, writes
// it back and embeds it, so the viewer shows per test its trend over the runs and per run the totals.
// Keep the report folder between CI runs (a cache or an artifact) to keep the history.
import fs from 'node:fs'
import path from 'node:path'

/** p: passed, f: failed, k: flaky, s: skipped or did not run. */
export type HistoryOutcome = 'p' | 'f' | 'k' | 's'

export interface HistoryRun {
  startTime: string
  duration: number
  status: string
  totals: { passed: number; failed: number; flaky: number; skipped: number }
  /** testId → [outcome, duration in ms]. */
  tests: Record<string, [HistoryOutcome, number]>
}

export interface HistoryFile {
  version: 1
  runs: HistoryRun[]
}

export const DEFAULT_HISTORY_RUNS = 20
export const HISTORY_FILE = 'history.json'

const outcomes: Record<string, HistoryOutcome> = { expected: 'p', unexpected: 'f', flaky: 'k', skipped: 's' }

export function checkHistoryOption(value: unknown): number {
  if (value === undefined) return DEFAULT_HISTORY_RUNS
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 1000)
    throw Object.assign(
      new Error(
        `html reporter: option history must be the number of runs to keep, 0 to 1000 (0: none), got ${JSON.stringify(value)}`,
      ),
      { vtUserError: true },
    )
  return value
}

/** This run as a history entry. */
export function runSummary(
  stats: { startTime: string; duration: number; status: string },
  tests: { testId: string; status: string; duration: number }[],
): HistoryRun {
  const totals = { passed: 0, failed: 0, flaky: 0, skipped: 0 }
  const entries: HistoryRun['tests'] = {}
  for (const t of tests) {
    const o = outcomes[t.status] ?? 'f'
    totals[({ p: 'passed', f: 'failed', k: 'flaky', s: 'skipped' } as const)[o]]++
    entries[t.testId] = [o, Math.max(0, Math.round(t.duration))]
  }
  return {
    startTime: stats.startTime,
    duration: Math.round(stats.duration),
    status: stats.status,
    totals,
    tests: entries,
  }
}

function isRun(r: any): r is HistoryRun {
  return (
    r &&
    typeof r === 'object' &&
    typeof r.startTime === 'string' &&
    typeof r.duration === 'number' &&
    typeof r.status === 'string' &&
    r.totals &&
    typeof r.totals === 'object' &&
    r.tests &&
    typeof r.tests === 'object'
  )
}

/** The earlier runs in `dir`; a missing file is no history, an unreadable one is reported and replaced. */
export function readHistory(dir: string, warn: (message: string) => void): HistoryRun[] {
  const file = path.join(dir, HISTORY_FILE)
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (e: any) {
    if (e?.code !== 'ENOENT') warn(`cannot read ${file} (${e?.message ?? e}): starting a new history`)
    return []
  }
  try {
    const data = JSON.parse(text) as HistoryFile
    if (data?.version !== 1 || !Array.isArray(data.runs)) throw new Error('not a vt report history (version 1)')
    return data.runs.filter(isRun)
  } catch (e: any) {
    warn(`${file} is not a report history (${e?.message ?? e}): starting a new history`)
    return []
  }
}

/** Earlier runs plus this one (replacing an entry of the same start time), oldest first, the newest `keep`. */
export function addRun(runs: HistoryRun[], run: HistoryRun, keep: number): HistoryRun[] {
  const others = runs.filter(r => r.startTime !== run.startTime)
  return [...others, run].sort((a, b) => a.startTime.localeCompare(b.startTime)).slice(-Math.max(1, keep))
}

export function writeHistory(dir: string, runs: HistoryRun[]): void {
  const file = path.join(dir, HISTORY_FILE)
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, JSON.stringify({ version: 1, runs } satisfies HistoryFile))
  fs.renameSync(tmp, file)
}
