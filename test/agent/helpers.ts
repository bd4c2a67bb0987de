// Starts real `vt agent` processes for tests and checks that nothing leaks.
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { AgentClient, type AgentClientOptions } from '../../src/cluster/client.ts'
import { spawnLocalAgent } from '../../src/cluster/localAgent.ts'
import { readStat } from '../../src/util/proc.ts'

export { AGENT_MAIN } from '../../src/cluster/localAgent.ts'

export interface TestAgent {
  url: string
  token: string
  stateDir: string
  /** The agent's allowed root (a temp dir). */
  root: string
  dir: string
  child: ChildProcess
  pid: number
  connect(options?: Partial<AgentClientOptions>): Promise<AgentClient>
  log(): string
  /** Stops gracefully (stdin closed). */
  stop(): Promise<void>
  /** SIGKILLs the agent and waits for its keeper to have reaped its sessions. */
  kill9(): Promise<void>
  /** Stops and removes its directories. */
  dispose(): Promise<void>
}

export interface StartOptions {
  dir?: string
  token?: string
  extraArgs?: string[]
  port?: number
  /** Default true: log only to the state dir. */
  quiet?: boolean
}

export async function startTestAgent(options: StartOptions = {}): Promise<TestAgent> {
  const dir = options.dir ?? mkdtempSync(join(os.tmpdir(), 'vt-agent-test-'))
  const token = options.token ?? randomBytes(24).toString('hex')
  const stateDir = join(dir, 'state')
  const root = join(dir, 'root')
  await import('node:fs').then(fs => fs.mkdirSync(root, { recursive: true }))
  let stderr = ''
  const { child, url } = await spawnLocalAgent({
    listen: `127.0.0.1:${options.port ?? 0}`,
    token,
    stateDir,
    name: 'testhost',
    allowRoots: [root],
    quiet: options.quiet !== false,
    extraArgs: options.extraArgs,
    onSpawn: c =>
      c.stderr?.on('data', d => {
        stderr += d
      }),
    wait: { explain: why => `agent ${why}: ${stderr}` },
  })
  const exited = once(child, 'exit')
  const agent: TestAgent = {
    url,
    token,
    stateDir,
    root,
    dir,
    child,
    pid: child.pid as number,
    connect: o => AgentClient.connect({ url, token, ...o }),
    log: () => {
      try {
        return readFileSync(join(stateDir, 'agent.log'), 'utf8')
      } catch {
        return ''
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.stdin?.end()
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(t)
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await exited
      // Its keeper reaps the sessions and then drops the lock: wait, so that tests see a settled state dir.
      await waitFor(() => !existsSync(join(stateDir, 'agent.lock')), 10_000, "the dead agent's keeper to finish")
    },
    async dispose() {
      await agent.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return agent
}

export function alive(pid: number): boolean {
  const s = readStat(pid)
  return s !== undefined && s.state !== 'Z'
}

export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const start = Date.now()
  for (;;) {
    if (await cond()) return Date.now() - start
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(r => setTimeout(r, 25))
  }
}

/** Leak check: the agent process is gone and its directory removed. */
export function assertNoLeak(agent: TestAgent): void {
  if (alive(agent.pid)) throw new Error(`agent pid ${agent.pid} is still running`)
  if (existsSync(agent.dir)) throw new Error(`agent dir ${agent.dir} was not removed`)
}
