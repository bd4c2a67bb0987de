// Starting a local `vt agent` process and waiting for its ready line: one place for the agent's command line,
// used by the embedded cluster, the tests and the benchmarks.
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { type AgentReady, parseReadyLine } from '../protocol/ready.ts'

export type { AgentReady }

export interface WaitOptions {
  /** Default 30 s. */
  timeoutMs?: number
  /** Turns the reason ('exited with code 2 before it was ready', ...) into the error message. */
  explain?: (why: string) => string
}

/**
 * Resolves with the agent's ready line, read from the child's piped stdout. Rejects when the agent exits, fails to
 * start or stays silent past the timeout. Afterwards stdout is drained so the agent never blocks on a full pipe.
 */
export function waitForAgentReady(child: ChildProcess, options: WaitOptions = {}): Promise<AgentReady> {
  const timeoutMs = options.timeoutMs ?? 30_000
  const explain = options.explain ?? (why => `vt agent ${why}`)
  const stdout = child.stdout
  if (!stdout) return Promise.reject(new Error(explain('has no piped stdout to report ready on')))
  return new Promise<AgentReady>((resolve, reject) => {
    let buffer = ''
    const cleanup = () => {
      clearTimeout(timer)
      child.off('exit', onExit)
      child.off('error', onError)
      stdout.off('data', onData)
      stdout.resume()
    }
    const fail = (why: string) => {
      cleanup()
      reject(new Error(explain(why)))
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`exited with ${signal ? `signal ${signal}` : `code ${code}`} before it was ready`)
    const onError = (e: Error) => fail(`could not start: ${e.message}`)
    const onData = (d: Buffer | string) => {
      buffer += d.toString()
      for (const line of buffer.split('\n')) {
        const ready = parseReadyLine(line)
        if (ready === undefined) continue
        if (ready instanceof Error) return fail(ready.message)
        cleanup()
        return resolve(ready)
      }
    }
    const timer = setTimeout(() => fail(`did not report ready within ${timeoutMs / 1000} s`), timeoutMs)
    child.on('exit', onExit)
    child.on('error', onError)
    stdout.on('data', onData)
  })
}

/** The agent's entry point, run through tsx. A path, not an import: the controller never loads host code. */
export const AGENT_MAIN = fileURLToPath(new URL('../../agent/main.ts', import.meta.url))

export interface LocalAgentOptions {
  /** HOST:PORT to listen on (default 127.0.0.1:0, a free port on loopback). */
  listen?: string
  token: string
  stateDir: string
  name?: string
  allowRoots?: string[]
  labels?: Record<string, string>
  maxLeaseSeconds?: number
  /** Allow a non-loopback listen address without TLS (only inside namespaces the run created). */
  insecure?: boolean
  /** Log only to the state dir, not stderr. */
  quiet?: boolean
  /** Stop when stdin closes (default true): the agent dies with whoever started it. */
  exitWithStdin?: boolean
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string
  /** What the agent offers VMs and reservations (`--capacity-memory`, `--capacity-cpus`); default the machine. */
  capacity?: { memoryBytes?: number; cpus?: number }
  /** More `vt agent` flags. */
  extraArgs?: string[]
  /** Extra environment (the token travels in VT_AGENT_TOKEN, never on the command line). */
  env?: NodeJS.ProcessEnv
  /** Default: pipe all three. stdout must be a pipe (the ready line); stderr may be a log file's fd. */
  stdio?: 'pipe' | ['pipe' | 'ignore', 'pipe', 'pipe' | 'ignore' | 'inherit' | number]
  /** Own process group and session: a terminal's Ctrl-C does not reach it (whoever started it stops it). */
  detached?: boolean
  /** Called right after the spawn, before the ready line (e.g. to pipe stderr to a log). */
  onSpawn?: (child: ChildProcess) => void
  /** For waitForAgentReady. */
  wait?: WaitOptions
}

export interface LocalAgent {
  child: ChildProcess
  ready: AgentReady
  url: string
}

/** The `vt agent` arguments for these options (after the tsx entry point). */
export function localAgentArgs(o: LocalAgentOptions): string[] {
  return [
    '--listen',
    o.listen ?? '127.0.0.1:0',
    '--token-env',
    'VT_AGENT_TOKEN',
    '--state-dir',
    o.stateDir,
    ...(o.name ? ['--name', o.name] : []),
    ...(o.allowRoots ?? []).flatMap(r => ['--allow-root', r]),
    ...(o.maxLeaseSeconds ? ['--max-lease', String(o.maxLeaseSeconds)] : []),
    ...(o.insecure ? ['--insecure'] : []),
    ...(o.quiet ? ['--quiet'] : []),
    ...(o.exitWithStdin === false ? [] : ['--exit-with-stdin']),
    ...Object.entries(o.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    ...(o.capacity?.memoryBytes !== undefined ? ['--capacity-memory', String(o.capacity.memoryBytes)] : []),
    ...(o.capacity?.cpus !== undefined ? ['--capacity-cpus', String(o.capacity.cpus)] : []),
    ...(o.extraArgs ?? []),
  ]
}

/**
 * Starts `vt agent` as a child process and resolves once it printed its ready line. On failure the child is
 * killed and the error says why (with `wait.explain`).
 */
export async function spawnLocalAgent(o: LocalAgentOptions): Promise<LocalAgent> {
  const node = [process.execPath, '--import', import.meta.resolve('tsx'), AGENT_MAIN, ...localAgentArgs(o)]
  const [cmd, ...args] = o.netns ? ['ip', 'netns', 'exec', o.netns, ...node] : node
  const child = spawn(cmd, args, {
    env: { ...process.env, ...o.env, VT_AGENT_TOKEN: o.token },
    stdio: o.stdio ?? ['pipe', 'pipe', 'pipe'],
    detached: o.detached,
  })
  o.onSpawn?.(child)
  try {
    const ready = await waitForAgentReady(child, o.wait)
    return { child, ready, url: ready.url }
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  }
}
