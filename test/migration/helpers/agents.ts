// Two (or more) real vt agents in this process, each with its own state dir and name, and a Host per agent
// connected through the real client: the control plane without the runner, for migration tests.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type RunningAgent, startAgent } from '../../../agent/server.ts'
import { AgentClient } from '../../../src/cluster/client.ts'
import { Host } from '../../../src/cluster/host.ts'
import { spawnLocalAgent } from '../../../src/cluster/localAgent.ts'
import type { MigratableVm } from '../../../src/migration/vm.ts'
import type { VmInfo, VmSpec } from '../../../src/protocol/vm.ts'

export interface TestCluster {
  hosts: Host[]
  agents: RunningAgent[]
  stop(): Promise<void>
}

export async function startAgents(names: string[]): Promise<TestCluster> {
  const token = `tok-${process.pid}-${Date.now()}`
  const dirs: string[] = []
  const agents: RunningAgent[] = []
  const hosts: Host[] = []
  const stop = async () => {
    await Promise.all(hosts.map(h => h.close().catch(() => {})))
    await Promise.all(agents.map(a => a.stop().catch(() => {})))
    await Promise.all(dirs.map(d => rm(d, { recursive: true, force: true })))
  }
  try {
    for (const name of names) {
      const dir = await mkdtemp(join(tmpdir(), `vt-mig-agent-${name}-`))
      dirs.push(dir)
      agents.push(await startAgent({ host: '127.0.0.1', port: 0, token, stateDir: dir, name, quiet: true }))
    }
    for (const a of agents) {
      const client = await AgentClient.connect({ url: a.url, token, name: a.name, leaseSeconds: 30 })
      hosts.push(new Host(client, a.url))
    }
  } catch (e) {
    await stop()
    throw e
  }
  return { hosts, agents, stop }
}

/** A minimal MigratableVm over the vm service (what the Vm handle in src/vm/ provides in full). */
export class TestVm implements MigratableVm {
  constructor(
    public host: Host,
    readonly spec: VmSpec,
    public info: VmInfo,
  ) {}
  get name(): string {
    return this.spec.name
  }
  static async create(host: Host, spec: VmSpec): Promise<TestVm> {
    return new TestVm(host, spec, await host.service('vm').create(spec))
  }
  rebind(host: Host, info: VmInfo): void {
    this.host = host
    this.info = info
  }
  console(): Promise<string> {
    return this.host.service('vm').console(this.name)
  }
  status(): Promise<string> {
    return this.host
      .service('vm')
      .qmp(this.name, 'query-status')
      .then(s => s.status)
  }
  async waitForPasses(n: number, timeoutMs = 30_000): Promise<void> {
    const count = (s: string) => s.length - s.replaceAll('B', '').length
    const base = count(await this.console())
    const deadline = Date.now() + timeoutMs
    while (count(await this.console()) < base + n) {
      if (Date.now() > deadline)
        throw new Error(`${this.name} on ${this.host.name}: fewer than ${n} passes in ${timeoutMs} ms`)
      await new Promise(r => setTimeout(r, 50))
    }
  }
  destroy(): Promise<void> {
    return this.host
      .service('vm')
      .destroy(this.name)
      .catch(() => {})
  }
}

export interface AgentProcess {
  url: string
  name: string
  stateDir: string
  proc: import('node:child_process').ChildProcess
  exited: Promise<void>
}

/** A `vt agent` in its own process (so a test can SIGKILL it), on loopback with a given state dir. */
export async function spawnAgent(name: string, token: string, stateDir: string): Promise<AgentProcess> {
  let err = ''
  let exited!: Promise<void>
  const { child: proc, url } = await spawnLocalAgent({
    token,
    stateDir,
    name,
    quiet: !process.env.VT_DEBUG_AGENTS,
    exitWithStdin: false, // stdin ignored: the tests kill these agents themselves
    stdio: ['ignore', 'pipe', 'pipe'],
    onSpawn: c => {
      exited = new Promise<void>(resolve =>
        c.on('exit', (code, signal) => {
          if (process.env.VT_DEBUG_AGENTS)
            process.stderr.write(`agent ${name} exited: code ${code} signal ${signal}\n${err}\n`)
          resolve()
        }),
      )
      c.stderr?.on('data', d => {
        err += d
      })
    },
    wait: { explain: why => `agent ${name} ${why}: ${err}` },
  })
  return { url, name, stateDir, proc, exited }
}

export async function connectHost(url: string, name: string, token: string): Promise<Host> {
  const client = await AgentClient.connect({ url, token, name, leaseSeconds: 30, reconnect: false })
  return new Host(client, url)
}
