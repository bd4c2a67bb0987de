// Host facts: sent in the handshake and available through `facts.get` (fresh values for memory and disk).
import { z } from 'zod'
import { call, defineService } from './contract.ts'

export interface HostFacts {
  /** The agent's name (`--name`, default: hostname). */
  name: string
  hostname: string
  arch: string
  platform: string
  kernel: string
  cpu: { model: string; flags: string[]; cores: number }
  memory: { totalBytes: number; availableBytes: number }
  /** Free bytes in the agent's state dir. */
  disk: { stateDir: string; freeBytes: number; totalBytes: number }
  qemu: { system?: string; img?: string }
  /**
   * Accelerators a VM can use here, best first ('kvm', 'tcg'). The VM service fills it with a probe boot;
   * without one, 'tcg' when QEMU is installed.
   */
  accelerators: string[]
  labels: Record<string, string>
  /** Directories the files service may touch. */
  roots: string[]
  /** Address the agent listens on, as the controller should reach it. */
  address: string
  /** `confined`: no exec, spawn, raw QEMU arguments, exec: URIs or HMP (`vt agent --confined`). */
  agent: { version: string; protocol: number; pid: number; startedAt: number; confined?: boolean }
  /** Extra facts contributed by services, by service name. */
  extra: Record<string, unknown>
}

export const facts = defineService('facts', {
  /** Facts with fresh memory and disk numbers. */
  get: call().returns<HostFacts>(),
  /** Round trip without work: for health checks and benchmarks. */
  ping: call(z.unknown().optional()).returns<unknown>(),
})
