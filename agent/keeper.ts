// The agent's keeper: a tiny `sh` in a session of its own, holding a pipe from the agent. When the agent stops
// normally it writes "stopped" first and the keeper exits. When the agent dies any other way (kill -9, a crash,
// an OOM kill) the pipe closes without it, and the keeper execs `reap-state.ts`, which reaps what the agent's
// sessions recorded: process trees (pid + start time, whole groups), paths. So what a test started with
// host.exec / host.spawn dies with the agent, not at its next start. QEMU also dies by its own pdeathsig.
import { spawn } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startTimeOf } from '../src/util/proc.ts'

const REAP_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), 'reap-state.ts')

// Positional parameters only: no path is ever part of the script text.
const SCRIPT = 'IFS= read -r line; [ "$line" = stopped ] && exit 0; exec "$1" --import "$2" "$3" "$4" "$5" "$6"'

export interface Keeper {
  pid?: number
  /** The agent stops normally: the keeper exits without reaping. */
  release(): void
}

export function startKeeper(stateDir: string): Keeper {
  const agent = `${process.pid}:${startTimeOf(process.pid) ?? 0}`
  const child = spawn(
    '/bin/sh',
    ['-c', SCRIPT, 'vt-agent-keeper', process.execPath, import.meta.resolve('tsx'), REAP_MAIN, stateDir, agent],
    { stdio: ['pipe', 'ignore', 'ignore'], detached: true },
  )
  child.on('error', () => {})
  child.stdin?.on('error', () => {})
  child.unref()
  const stdin = child.stdin as unknown as { unref?: () => void } | null
  stdin?.unref?.() // the pipe must not keep the agent alive
  return {
    pid: child.pid,
    release: () => {
      child.stdin?.end('stopped\n')
    },
  }
}
