// Memory of a whole process tree (this controller, its agents, their QEMUs), sampled until stopped: the peak of
// the sum of PSS (shared pages split among their users, so the sum is honest) and of RSS (what `top` shows).
import { readFileSync } from 'node:fs'
import { allProcesses } from '../../src/util/proc.ts'

export interface TreeMemory {
  pssBytes: number
  rssBytes: number
  processes: number
}

function descendants(root: number): number[] {
  const procs = allProcesses()
  const children = new Map<number, number[]>()
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid])
  const out: number[] = []
  const todo = [root]
  while (todo.length) {
    const pid = todo.pop() as number
    out.push(pid)
    todo.push(...(children.get(pid) ?? []))
  }
  return out
}

function kib(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text)
  return m ? Number(m[1]) * 1024 : 0
}

export function treeMemory(root = process.pid): TreeMemory {
  let pssBytes = 0
  let rssBytes = 0
  let processes = 0
  for (const pid of descendants(root)) {
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
      pssBytes += kib(rollup, 'Pss')
      rssBytes += kib(rollup, 'Rss')
      processes++
    } catch {} // gone meanwhile, or a kernel thread
  }
  return { pssBytes, rssBytes, processes }
}

/** Samples the tree every `everyMs` until `stop()`, which returns the peaks seen. */
export function samplePeak(everyMs = 500): { stop(): TreeMemory; now(): TreeMemory } {
  const peak: TreeMemory = { pssBytes: 0, rssBytes: 0, processes: 0 }
  const take = () => {
    const m = treeMemory()
    peak.pssBytes = Math.max(peak.pssBytes, m.pssBytes)
    peak.rssBytes = Math.max(peak.rssBytes, m.rssBytes)
    peak.processes = Math.max(peak.processes, m.processes)
  }
  take()
  const timer = setInterval(take, everyMs)
  return {
    stop: () => {
      clearInterval(timer)
      take()
      return { ...peak }
    },
    now: () => ({ ...peak }),
  }
}
