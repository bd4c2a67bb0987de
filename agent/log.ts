// The agent's log: one line per event, `ISO-time LEVEL message key=value ...`, to stderr and to
// <state-dir>/agent.log. Lines start with the timestamp so that a time window can be cut out (session.log).
import { appendFileSync, renameSync, statSync } from 'node:fs'
import type { Logger } from './service.ts'

/** The log is rotated to agent.log.1 past this size (checked every 1000 lines). */
const MAX_LOG_BYTES = 64 * 1024 * 1024

// Whoever reads our stderr may die first (the embedded controller on kill -9): a broken pipe there must never
// take the agent down, which then still has its sessions to reap. Log lines then go only to the file.
let stderrBroken = false
let watching = false
function watchStderr(): void {
  if (watching) return
  watching = true
  process.stderr.on('error', () => {
    stderrBroken = true
  })
}

export function createLogger(file: string | undefined, options: { quiet?: boolean; prefix?: string } = {}): Logger {
  let lines = 0
  if (!options.quiet) watchStderr()
  const write = (level: string, message: string, fields?: Record<string, unknown>) => {
    let line = `${new Date().toISOString()} ${level} ${options.prefix ? `${options.prefix} ` : ''}${message}`
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue
        const s = typeof v === 'string' ? v : JSON.stringify(v)
        line += ` ${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`
      }
    }
    line = `${line.replace(/\n/g, '\\n')}\n`
    if (!options.quiet && !stderrBroken) {
      try {
        process.stderr.write(line)
      } catch {
        stderrBroken = true
      }
    }
    if (file) {
      try {
        if (++lines % 1000 === 0 && statSync(file).size > MAX_LOG_BYTES) renameSync(file, `${file}.1`)
        appendFileSync(file, line)
      } catch {
        // The log must never take the agent down (disk full, state dir removed under us).
      }
    }
  }
  return {
    info: (m, f) => write('INFO', m, f),
    warn: (m, f) => write('WARN', m, f),
    error: (m, f) => write('ERROR', m, f),
  }
}

/** Lines of a log whose timestamps fall in [since, until]; continuation-free since every line has one. */
export function sliceLog(text: string, sinceMs = 0, untilMs = Number.POSITIVE_INFINITY): string {
  const out: string[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    const t = Date.parse(line.slice(0, 24))
    if (Number.isNaN(t) || (t >= sinceMs && t <= untilMs)) out.push(line)
  }
  return out.length ? `${out.join('\n')}\n` : ''
}
