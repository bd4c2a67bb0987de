// Collects host facts: static ones once (cpu, qemu versions), fresh ones on each request (memory, disk).
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { statfs } from 'node:fs/promises'
import os from 'node:os'
import { promisify } from 'node:util'
import type { HostFacts } from '../src/protocol/facts.ts'
import { PROTOCOL_VERSION } from '../src/protocol/wire.ts'

const run = promisify(execFile)

export interface StaticFacts {
  hostname: string
  arch: string
  platform: string
  kernel: string
  cpu: HostFacts['cpu']
  qemu: HostFacts['qemu']
  accelerators: string[]
}

async function version(cmd: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(cmd, ['--version'], { timeout: 10_000 })
    return stdout.split('\n')[0].trim() || undefined
  } catch {
    return undefined
  }
}

function cpuInfo(): { model: string; flags: string[] } {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8')
    const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1] ?? os.cpus()[0]?.model ?? 'unknown'
    const flags = /^flags\s*:\s*(.*)$/m.exec(text)?.[1]?.split(/\s+/).filter(Boolean) ?? []
    return { model: model.trim(), flags }
  } catch {
    return { model: os.cpus()[0]?.model ?? 'unknown', flags: [] }
  }
}

export async function staticFacts(): Promise<StaticFacts> {
  const [system, img] = await Promise.all([version('qemu-system-x86_64'), version('qemu-img')])
  const { model, flags } = cpuInfo()
  return {
    hostname: os.hostname(),
    arch: os.arch(),
    platform: os.platform(),
    kernel: os.release(),
    cpu: { model, flags, cores: os.availableParallelism() },
    qemu: { system, img },
    // The VM service replaces this with what a probe boot proves usable.
    accelerators: system ? ['tcg'] : [],
  }
}

export function availableMemory(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))
    if (m) return Number(m[1]) * 1024
  } catch {}
  return os.freemem()
}

export async function diskOf(dir: string): Promise<HostFacts['disk']> {
  const s = await statfs(dir)
  return { stateDir: dir, freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize }
}

export async function collectFacts(
  base: StaticFacts,
  agent: {
    name: string
    stateDir: string
    labels: Record<string, string>
    roots: string[]
    address: string
    version: string
    startedAt: number
    confined?: boolean
  },
  providers: (() => Promise<Partial<HostFacts>> | Partial<HostFacts>)[],
): Promise<HostFacts> {
  const facts: HostFacts = {
    name: agent.name,
    hostname: base.hostname,
    arch: base.arch,
    platform: base.platform,
    kernel: base.kernel,
    cpu: base.cpu,
    memory: { totalBytes: os.totalmem(), availableBytes: availableMemory() },
    disk: await diskOf(agent.stateDir),
    qemu: base.qemu,
    accelerators: base.accelerators,
    labels: agent.labels,
    roots: agent.roots,
    address: agent.address,
    agent: {
      version: agent.version,
      protocol: PROTOCOL_VERSION,
      pid: process.pid,
      startedAt: agent.startedAt,
      ...(agent.confined ? { confined: true } : {}),
    },
    extra: {},
  }
  for (const provider of providers) {
    const extra = await provider()
    const { extra: more, ...rest } = extra
    Object.assign(facts, rest)
    if (more) Object.assign(facts.extra, more)
  }
  return facts
}
