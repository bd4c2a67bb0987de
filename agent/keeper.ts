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

// Positional parameters only: no path is ever part of the script text. $1 node, $2 tsx, $3 reap-state.ts,
// $4 state dir, $5 agent pid:start, $6 the agent's cgroup (or empty). After the first line, wait for EOF: the
// agent's end of the pipe closes when it exits (the pipe is close-on-exec: its children do not hold it). Empty the
// cgroup at once (a few ms), then reap the records (paths; processes outside any cgroup), which takes node's start.
const SCRIPT = `IFS= read -r line; cat >/dev/null
empty() {
  i=0
  while [ -n "$1" ] && [ -d "$1" ] && [ $i -lt 50 ]; do
    pids=$(cat "$1/cgroup.procs" 2>/dev/null)
    [ -z "$pids" ] && break
    kill -9 $pids 2>/dev/null
    sleep 0.1
    i=$((i + 1))
  done
}
empty "$6"
[ "$line" = stopped ] || "$1" --import "$2" "$3" "$4" "$5"
# The agent may still be a zombie its parent has not reaped: its cgroup cannot be removed until then.
i=0
while [ -n "$6" ] && [ -d "$6" ] && ! rmdir "$6" 2>/dev/null && [ $i -lt 300 ]; do
  empty "$6"
  sleep 0.1
  i=$((i + 1))
done
exit 0`

export interface Keeper {
  pid?: number
  /** The agent stops normally: the keeper does not reap its sessions (it still empties the cgroup). */
  release(): void
}

/**
 * Started before the agent joins `cgroup` (when given), so that the keeper stays outside it and can empty and
 * remove it once the agent exited, cleanly or not.
 */
export function startKeeper(stateDir: string, cgroup?: string): Keeper {
  const agent = `${process.pid}:${startTimeOf(process.pid) ?? 0}`
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      SCRIPT,
      'vt-agent-keeper',
      process.execPath,
      import.meta.resolve('tsx'),
      REAP_MAIN,
      stateDir,
      agent,
      cgroup ?? '',
    ],
    { stdio: ['pipe', 'ignore', 'ignore'], detached: true },
  )
  child.on('error', () => {})
  child.stdin?.on('error', () => {})
  child.unref()
  const stdin = child.stdin as unknown as { unref?: () => void } | null
  stdin?.unref?.() // the pipe must not keep the agent alive
  return {
    pid: child.pid,
    // With a cgroup the pipe stays open until we exit: the keeper then empties the cgroup (it would kill us now).
    release: () => (cgroup ? child.stdin?.write('stopped\n') : child.stdin?.end('stopped\n')),
  }
}
