// The state file of a paused `vt test --debug` run: how `vt console` finds the run's hosts and VMs. The paused
// run's main process writes it (mode 0600, in a directory of the user's own, mode 0700) when a test pauses and
// removes it when the test resumes or the run ends; it holds the agents' URLs and tokens and the session (id and
// secret) that owns the VMs. A file whose writer is gone (same pid, other start time: a reused pid) is stale and
// removed by whoever lists the directory.
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { isSameProcess, startTimeOf } from '../util/proc.ts'

export interface DebugHost {
  name: string
  url: string
  token: string
  address?: string
  tls?: { ca?: string; cert?: string; key?: string }
  /** The paused worker's session on this agent: it owns the VMs. */
  session: { id: string; secret: string }
  vms: { name: string; status: string }[]
}

export interface DebugState {
  version: 1
  /** The `vt test` main process (pid and start time) that wrote the file. */
  pid: number
  startTime: number
  pausedAt: number
  /** Why the run paused: 'test.debug()' or 'failure', and where. */
  reason: string
  test: { title: string; location: string }
  hosts: DebugHost[]
}

/** `VT_DEBUG_DIR`, else <tmp>/vt-debug-<uid>: one directory per user, checked to be the user's own. */
export function debugDir(): string {
  return process.env.VT_DEBUG_DIR || join(os.tmpdir(), `vt-debug-${process.getuid?.() ?? 0}`)
}

/** Creates the directory, or checks an existing one: a directory (not a link), ours, closed to others. */
function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const st = lstatSync(dir)
  const uid = process.getuid?.()
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
    throw new Error(`${dir} is not a directory of this user's own: remove it, or set VT_DEBUG_DIR to another place`)
  }
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700)
}

export function writeDebugState(state: DebugState): string {
  const dir = debugDir()
  ensureDir(dir)
  const file = join(dir, `${state.pid}.json`)
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 })
  renameSync(tmp, file)
  return file
}

export function removeDebugState(file: string): void {
  rmSync(file, { force: true })
}

/** The paused runs of this user, oldest first; stale files are removed on the way. */
export function listDebugStates(): { file: string; state: DebugState }[] {
  const dir = debugDir()
  let names: string[]
  try {
    names = readdirSync(dir).filter(n => /^\d+\.json$/.test(n))
  } catch {
    return []
  }
  const out: { file: string; state: DebugState }[] = []
  for (const name of names) {
    const file = join(dir, name)
    let state: DebugState
    try {
      state = JSON.parse(readFileSync(file, 'utf8'))
    } catch {
      continue // being written, or not ours to judge
    }
    if (state.version !== 1 || !isSameProcess(state.pid, state.startTime)) {
      rmSync(file, { force: true })
      continue
    }
    out.push({ file, state })
  }
  return out.sort((a, b) => a.state.pausedAt - b.state.pausedAt)
}

/** This process's identity for the state file. */
export function selfIdentity(): { pid: number; startTime: number } {
  return { pid: process.pid, startTime: startTimeOf(process.pid) ?? 0 }
}
