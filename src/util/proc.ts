// Process facts from /proc: start times (so that a recorded pid is only ever killed while it still names the
// same process), process groups and descendants (so that a whole tree is killed on timeout or reap).
import { readdirSync, readFileSync } from 'node:fs'

export interface ProcStat {
  pid: number
  ppid: number
  pgrp: number
  /** Clock ticks since boot: with the pid, identifies one process for the machine's uptime. */
  startTime: number
  state: string
}

export function readStat(pid: number): ProcStat | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name is in parentheses and may itself contain spaces and parentheses.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return { pid, state: rest[0], ppid: Number(rest[1]), pgrp: Number(rest[2]), startTime: Number(rest[19]) }
}

export function startTimeOf(pid: number): number | undefined {
  return readStat(pid)?.startTime
}

/** True when `pid` is alive and still the process that had `startTime` (not a zombie). */
export function isSameProcess(pid: number, startTime: number): boolean {
  const s = readStat(pid)
  return s !== undefined && s.startTime === startTime && s.state !== 'Z'
}

export function allProcesses(): ProcStat[] {
  const out: ProcStat[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const s = readStat(Number(name))
    if (s) out.push(s)
  }
  return out
}

/**
 * The processes to kill for a recorded process: itself (if still the same), its descendants, and, with
 * `group`, the members of its process group started no earlier than it. Linux does not reuse a pid while it
 * still names a process group, so members of group `pid` belong to the recorded process's group unless the
 * pid now names a different process.
 */
export function treeOf(pid: number, startTime: number | undefined, group: boolean): number[] {
  const procs = allProcesses()
  const self = procs.find(p => p.pid === pid)
  const selfOk = self !== undefined && (startTime === undefined || self.startTime === startTime)
  if (self && !selfOk) return [] // the pid was reused: never touch it or its group
  const result = new Set<number>()
  if (selfOk) result.add(pid)
  if (group) {
    for (const p of procs)
      if (p.pgrp === pid && (startTime === undefined || p.startTime >= startTime)) result.add(p.pid)
  }
  // Descendants of everything found so far (children that changed their group or session are still found).
  const children = new Map<number, number[]>()
  for (const p of procs) {
    const list = children.get(p.ppid)
    if (list) list.push(p.pid)
    else children.set(p.ppid, [p.pid])
  }
  const queue = [...result]
  while (queue.length) {
    const next = queue.pop() as number
    for (const c of children.get(next) ?? []) {
      if (!result.has(c)) {
        result.add(c)
        queue.push(c)
      }
    }
  }
  result.delete(process.pid)
  return [...result]
}

/** SIGKILLs a recorded process's tree; returns how many processes were signalled. */
export function killTree(
  pid: number,
  startTime: number | undefined,
  group: boolean,
  signal: NodeJS.Signals = 'SIGKILL',
): number {
  // A process may fork while we walk the tree: walk again until a pass finds nothing new to signal.
  const signalled = new Set<number>()
  for (let pass = 0; pass < 5; pass++) {
    const fresh = treeOf(pid, startTime, group).filter(p => !signalled.has(p))
    if (fresh.length === 0) break
    for (const p of fresh) {
      signalled.add(p)
      try {
        process.kill(p, signal)
      } catch {
        // already gone
      }
    }
    if (signal !== 'SIGKILL') break
  }
  return signalled.size
}

/** Polls until none of `pids` is alive (zombies count as gone) or `timeoutMs` passed. */
export async function waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const alive = pids.filter(p => {
      const s = readStat(p)
      return s !== undefined && s.state !== 'Z'
    })
    if (alive.length === 0) return true
    if (Date.now() > deadline) return false
    await new Promise(r => setTimeout(r, 20))
  }
}
