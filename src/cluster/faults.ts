// cluster.faults: the nemesis. Each fault is injected through the agents' `faults` service (which records it
// with the session, so a crashed controller's faults are healed by the agents), reported as a step, and
// tracked here so that the fixtures heal whatever a test left at its end.
import { ErrorNames, VtError } from '../protocol/errors.ts'
import type { FaultInfo } from '../protocol/faults.ts'
import { apiStep } from '../runner/apiStep.ts'
import { type AgentRestarter, agentRestarter } from './agentRestart.ts'
import type { Host } from './host.ts'

/** An injected fault: `heal()` undoes it (idempotent). */
export interface Fault {
  readonly description: string
  readonly healed: boolean
  heal(): Promise<void>
}

/** What a fault needs from a VM handle. */
export interface FaultTargetVm {
  readonly name: string
  readonly host: Host
}

type Part = { host: Host; info: FaultInfo }

export class FaultHandle implements Fault {
  healed = false
  constructor(
    readonly description: string,
    private readonly parts: Part[],
    private readonly owner: Set<FaultHandle>,
  ) {
    owner.add(this)
  }
  async heal(): Promise<void> {
    if (this.healed) return
    this.healed = true
    this.owner.delete(this)
    await apiStep(`heal: ${this.description}`, async () => {
      const errors: string[] = []
      for (const p of this.parts) {
        await p.host
          .service('faults')
          .heal(p.info.id)
          .catch(e => errors.push(`${p.host.name}: ${(e as Error).message}`))
      }
      if (errors.length) throw new Error(`healing "${this.description}" failed: ${errors.join('; ')}`)
    })
  }
}

export type HostGroup = Host | readonly Host[]

const groupOf = (g: HostGroup): readonly Host[] => (Array.isArray(g) ? g : [g as Host])
const names = (g: readonly Host[]) => `[${g.map(h => h.name).join(', ')}]`

function underlayAddress(h: Host): string {
  if (!h.address || !/^\d+\.\d+\.\d+\.\d+$/.test(h.address)) {
    throw new VtError(
      ErrorNames.badRequest,
      `host ${h.name} has no IPv4 underlay address (got "${h.address ?? ''}"): network faults need the hosts' addresses`,
    )
  }
  return h.address
}

export class Faults {
  /** Faults injected and not healed yet. */
  readonly active = new Set<FaultHandle>()

  /** Injects the parts one by one; if one fails, heals those already in place and rethrows. */
  private async inject(description: string, steps: [Host, (h: Host) => Promise<FaultInfo>][]): Promise<Fault> {
    return apiStep(`fault: ${description}`, async () => {
      const parts: Part[] = []
      try {
        for (const [host, apply] of steps) parts.push({ host, info: await apply(host) })
      } catch (e) {
        for (const p of parts)
          await p.host
            .service('faults')
            .heal(p.info.id)
            .catch(() => {})
        throw e
      }
      return new FaultHandle(description, parts, this.active)
    })
  }

  /** Cuts the underlay between every host of `a` and every host of `b` (both directions; nftables). */
  async partition(a: HostGroup, b: HostGroup): Promise<Fault> {
    const A = groupOf(a)
    const B = groupOf(b)
    if (A.length === 0 || B.length === 0) throw new Error('faults.partition(a, b): both groups need at least one host')
    const overlap = A.filter(h => B.includes(h))
    if (overlap.length) throw new Error(`faults.partition(a, b): ${names(overlap)} is in both groups`)
    const addrA = A.map(underlayAddress)
    const addrB = B.map(underlayAddress)
    return this.inject(`partition ${names(A)} | ${names(B)}`, [
      ...A.map(
        h => [h, (x: Host) => x.service('faults').partition({ peers: addrB })] as [Host, () => Promise<FaultInfo>],
      ),
      ...B.map(
        h => [h, (x: Host) => x.service('faults').partition({ peers: addrA })] as [Host, () => Promise<FaultInfo>],
      ),
    ])
  }

  /** Limits the underlay between `a` and `b` to `rate` in both directions (tc htb + tbf), e.g. '20mbit'. */
  async slowLink(a: Host, b: Host, options: { rate: string }): Promise<Fault> {
    if (a === b) throw new Error(`faults.slowLink(a, b): a and b are both ${a.name}`)
    const rate = options?.rate
    if (typeof rate !== 'string') throw new Error("faults.slowLink(a, b, { rate }): rate is required, e.g. '20mbit'")
    const addrA = underlayAddress(a)
    const addrB = underlayAddress(b)
    return this.inject(`slow link ${a.name} ↔ ${b.name} at ${rate}`, [
      [a, x => x.service('faults').slowLink({ peer: addrB, rate })],
      [b, x => x.service('faults').slowLink({ peer: addrA, rate })],
    ])
  }

  /** Drops frames between MACs of `a` and of `b` on a guest network's bridges on `hosts` (used by Network). */
  dropFrames(description: string, hosts: readonly Host[], bridge: string, a: string[], b: string[]): Promise<Fault> {
    return this.inject(
      description,
      hosts.map(h => [h, x => x.service('faults').dropFrames({ bridge, a, b })]),
    )
  }

  /**
   * SIGKILLs the VM's QEMU on its host, or on `options.host` (e.g. the destination of a running migration).
   * Nothing to heal: the handle's heal() does nothing.
   */
  async killQemu(vm: FaultTargetVm, options: { host?: Host } = {}): Promise<Fault> {
    const host = options.host ?? vm.host
    return apiStep(`fault: kill QEMU of ${vm.name} on ${host.name}`, async () => {
      const { pid } = await host.service('vm').info(vm.name)
      await host.service('faults').killQemu({ name: vm.name, pid })
      return { description: `QEMU of ${vm.name} on ${host.name} killed`, healed: true, heal: async () => {} }
    })
  }

  /** Agent restarts not completed yet (healAll completes them). */
  private readonly pending = new Set<Fault>()
  /** @internal Restarts a host's agent (the main process of `vt test`, or Cluster.connect's `restartAgent`). */
  restarter?: AgentRestarter
  /** @internal Opens a new session with a restarted agent (set by the Cluster). */
  restarted?: (host: Host) => Promise<void>

  /**
   * The agent process of `host` dies (SIGKILL, like a crash) and comes back: same name, address, port, token
   * and state dir. What every session held on that host dies with the old agent and is reaped by its keeper:
   * QEMU (its VMs are lost; a migration to or from it fails, the other side keeps or loses the VM as after any
   * lost host), networks, faults, processes. The call returns once the new agent is up and this controller has
   * a new session there (its networks made again). Embedded clusters only: a remote host's agent is not ours
   * to start, and asking is a clear error. heal() makes sure the host is connected again.
   */
  async restartAgent(host: Host): Promise<Fault> {
    const restart = this.restarter ?? agentRestarter()
    return apiStep(`fault: restart the agent of ${host.name}`, async () => {
      if (!restart) {
        throw new VtError(
          ErrorNames.badRequest,
          `faults.restartAgent(${host.name}): nothing here can restart that agent: only the agents of an embedded cluster started by \`vt test\` (or Cluster.connect(info, { restartAgent })) can be restarted`,
        )
      }
      // Active until the host is connected again: if anything below fails, healAll at the test's end retries.
      const fault: Fault & { healed: boolean } = {
        description: `agent of ${host.name} restarted`,
        healed: false,
        heal: async () => {
          if (fault.healed) return
          if (host.client.state === 'closed') await this.restarted?.(host)
          fault.healed = true
          this.pending.delete(fault)
        },
      }
      this.pending.add(fault)
      await restart(host.name)
      await fault.heal()
      return fault
    })
  }

  /** Heals every fault still active (the fixtures call this at the end of each test). */
  async healAll(): Promise<void> {
    const errors: string[] = []
    for (const f of [...this.active, ...this.pending].reverse())
      await f.heal().catch(e => errors.push((e as Error).message))
    if (errors.length) throw new Error(errors.join('\n'))
  }
}
