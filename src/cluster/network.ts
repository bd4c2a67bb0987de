// A guest network as specs see it: one L2 segment over every host of the cluster. Created lazily on every
// host through the agents' `network` service (bridge + VXLAN, recorded with each host's session), it hands
// out unique MACs and free addresses of its subnet, lets a host's own processes join (`attach`), and cuts
// traffic between groups of VMs or hosts (`partition`, a fault healed at the end of the test).
import { randomBytes, randomInt } from 'node:crypto'
import type { NetworkConfig } from '../config/cluster.ts'
import { ErrorNames, VtError } from '../protocol/errors.ts'
import { bridgeName, type NetworkInfo } from '../protocol/network.ts'
import type { NicSpec } from '../protocol/vm.ts'
import { apiStep } from '../runner/apiStep.ts'
import type { Fault, Faults } from './faults.ts'
import type { Host } from './host.ts'

export type NetworkOptions = NetworkConfig

/** A NIC on a guest network, as createVm takes it. */
export interface GuestNic {
  network: string
  /** Address with or without prefix ('10.77.0.10/24' or '10.77.0.10'); default: the next free one. */
  ip?: string
  mac?: string
}

/** What a VM (or an attached host) holds on a network. */
export interface NetworkAddress {
  ip: string
  mac: string
}

/** Anything with MACs on a network: a VM handle, or a host that joined with `attach`. */
export interface NetworkMember {
  readonly name: string
}

const toInt = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0)
const toIp = (n: number) => [24, 16, 8, 0].map(s => (n >>> s) & 255).join('.')

/** MACs of every network of one cluster: unique across its VMs. */
export class MacRegistry {
  private readonly used = new Map<string, string>()
  take(owner: string, mac?: string): string {
    if (mac !== undefined) {
      const m = mac.toLowerCase()
      if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m))
        throw new Error(`"${mac}" is not a MAC address like 52:54:00:12:34:56`)
      const holder = this.used.get(m)
      if (holder && holder !== owner) throw new Error(`MAC ${m} is already used by ${holder} in this cluster`)
      this.used.set(m, owner)
      return m
    }
    for (;;) {
      // 52:54:00 is QEMU's prefix; the rest random, checked against every MAC handed out in this cluster.
      const m = `52:54:00:${[...randomBytes(3)].map(b => b.toString(16).padStart(2, '0')).join(':')}`
      if (!this.used.has(m)) {
        this.used.set(m, owner)
        return m
      }
    }
  }
  release(mac: string): void {
    this.used.delete(mac)
  }
}

export class Network {
  readonly vni: number
  readonly bridge: string
  readonly prefix: number
  private readonly base: number
  private readonly size: number
  /** Address (as an integer) → who holds it. */
  private readonly addresses = new Map<number, string>()
  private readonly members = new Map<string, NetworkAddress[]>()
  private created?: Promise<NetworkInfo[]>
  /** The segment's MTU (underlay minus VXLAN overhead), known once created. */
  mtu?: number

  constructor(
    readonly name: string,
    readonly options: NetworkOptions,
    private readonly hosts: readonly Host[],
    private readonly macs: MacRegistry,
    private readonly faults: Faults,
  ) {
    const [addr, bits] = options.subnet.split('/')
    this.prefix = Number(bits)
    this.size = 2 ** (32 - this.prefix)
    this.base = toInt(addr) - (toInt(addr) % this.size)
    this.vni = options.vni ?? randomInt(1, 2 ** 24 - 1)
    this.bridge = bridgeName(this.vni)
    if (options.gateway) this.claim(options.gateway, 'the gateway')
  }

  get subnet(): string {
    return `${toIp(this.base)}/${this.prefix}`
  }

  /** Creates the network on every host (once; later calls wait for the first). */
  ready(): Promise<void> {
    this.created ??= Promise.all(
      this.hosts.map(h =>
        h.service('network').create({
          vni: this.vni,
          peers: this.hosts.filter(x => x !== h).map(x => x.address),
          ...(this.options.port ? { port: this.options.port } : {}),
          ...(this.options.device ? { device: this.options.device } : {}),
        }),
      ),
    ).then(infos => {
      this.mtu = Math.min(...infos.map(i => i.mtu))
      return infos
    })
    this.created.catch(() => {
      this.created = undefined
    })
    return this.created.then(() => {})
  }

  /** @internal Host `host`'s agent was restarted (its bridge, VXLAN and attachment are gone): make them again. */
  async rejoin(host: Host): Promise<void> {
    this.release(`host ${host.name}`)
    if (
      !this.created ||
      !(await this.created.then(
        () => true,
        () => false,
      ))
    )
      return
    await host.service('network').create({
      vni: this.vni,
      peers: this.hosts.filter(x => x !== host).map(x => x.address),
      ...(this.options.port ? { port: this.options.port } : {}),
      ...(this.options.device ? { device: this.options.device } : {}),
    })
  }

  /** Takes `ip` (with or without prefix) or the next free address for `owner`; returns 'a.b.c.d/prefix'. */
  private claim(ip: string | undefined, owner: string): string {
    if (ip !== undefined) {
      const [addr, bits] = ip.split('/')
      if (!/^(\d{1,3}\.){3}\d{1,3}$/.test(addr) || addr.split('.').some(o => Number(o) > 255))
        throw new VtError(ErrorNames.badRequest, `network ${this.name}: "${ip}" is not an IPv4 address`)
      if (bits !== undefined && Number(bits) !== this.prefix)
        throw new VtError(
          ErrorNames.badRequest,
          `network ${this.name}: ${ip} has prefix /${bits}, the subnet is ${this.subnet}`,
        )
      const n = toInt(addr)
      if (n <= this.base || n >= this.base + this.size - 1)
        throw new VtError(
          ErrorNames.badRequest,
          `network ${this.name}: ${addr} is not a host address of ${this.subnet}`,
        )
      const holder = this.addresses.get(n)
      if (holder && holder !== owner)
        throw new VtError(ErrorNames.badRequest, `network ${this.name}: ${addr} is already used by ${holder}`)
      this.addresses.set(n, owner)
      return `${addr}/${this.prefix}`
    }
    for (let n = this.base + 2; n < this.base + this.size - 1; n++) {
      if (!this.addresses.has(n)) {
        this.addresses.set(n, owner)
        return `${toIp(n)}/${this.prefix}`
      }
    }
    if (!this.addresses.has(this.base + 1)) {
      this.addresses.set(this.base + 1, owner)
      return `${toIp(this.base + 1)}/${this.prefix}`
    }
    throw new VtError(
      ErrorNames.capacity,
      `network ${this.name}: no free address left in ${this.subnet} (${this.size - 2} in use) for ${owner}: use a larger subnet or destroy VMs`,
      { code: 'NO_ADDRESS' },
    )
  }

  /** @internal A NIC spec for VM `owner` (createVm): unique MAC, address, bridge and MTU. */
  async nicFor(owner: string, nic: GuestNic): Promise<NicSpec> {
    await this.ready()
    const mac = this.macs.take(owner, nic.mac)
    let ip: string
    try {
      ip = this.claim(nic.ip, owner)
    } catch (e) {
      if (nic.mac === undefined) this.macs.release(mac)
      throw e
    }
    this.remember(owner, { ip, mac })
    return {
      mode: 'bridge',
      bridge: this.bridge,
      mac,
      ip,
      mtu: this.mtu,
      ...(this.options.gateway ? { gateway: this.options.gateway } : {}),
    }
  }

  private remember(owner: string, a: NetworkAddress): void {
    this.members.set(owner, [...(this.members.get(owner) ?? []), a])
  }

  /** @internal Gives back what `owner` held (its VM was destroyed). */
  release(owner: string): void {
    for (const a of this.members.get(owner) ?? []) {
      this.addresses.delete(toInt(a.ip.split('/')[0]))
      this.macs.release(a.mac)
    }
    this.members.delete(owner)
  }

  /** The addresses `member` holds here (first NIC first). */
  addressesOf(member: NetworkMember | string): NetworkAddress[] {
    return this.members.get(typeof member === 'string' ? member : member.name) ?? []
  }

  /**
   * Lets `host`'s own processes (servers, clients, host.spawn) join the network: the address goes on the
   * host's bridge. Returns the address and the MAC its frames carry.
   */
  async attach(host: Host, options: { ip?: string } = {}): Promise<NetworkAddress> {
    return apiStep(`network ${this.name}: attach ${host.name}${options.ip ? ` as ${options.ip}` : ''}`, async () => {
      await this.ready()
      const owner = `host ${host.name}`
      const ip = this.claim(options.ip, owner)
      try {
        const r = await host.service('network').attach({ vni: this.vni, ip })
        this.macs.take(owner, r.mac)
        const a = { ip, mac: r.mac }
        this.remember(owner, a)
        return a
      } catch (e) {
        this.addresses.delete(toInt(ip.split('/')[0]))
        throw e
      }
    })
  }

  /** @internal Removes the network from every host (its VMs must be gone). */
  async destroy(): Promise<void> {
    await Promise.all(
      this.hosts.map(h =>
        h
          .service('network')
          .destroy({ vni: this.vni })
          .catch(() => {}),
      ),
    )
    this.created = undefined
  }

  /** Drops traffic on this network between members of `a` and of `b` (VMs or attached hosts), on every host. */
  async partition(a: readonly (NetworkMember | Host)[], b: readonly (NetworkMember | Host)[]): Promise<Fault> {
    const macsOf = (group: readonly (NetworkMember | Host)[]) =>
      group.flatMap(m => {
        const key = isHost(m) ? `host ${m.name}` : m.name
        const found = this.members.get(key)
        if (!found) {
          throw new VtError(
            ErrorNames.badRequest,
            `network ${this.name}.partition: ${isHost(m) ? `host ${m.name} is not attached` : `${m.name} has no NIC`} on this network`,
          )
        }
        return found.map(x => x.mac)
      })
    const names = (g: readonly (NetworkMember | Host)[]) => `[${g.map(m => m.name).join(', ')}]`
    const A = macsOf(a)
    const B = macsOf(b)
    return this.faults.dropFrames(
      `network ${this.name}: partition ${names(a)} | ${names(b)}`,
      this.hosts,
      this.bridge,
      A,
      B,
    )
  }
}

function isHost(x: unknown): x is Host {
  return !!x && typeof x === 'object' && typeof (x as Host).service === 'function' && 'client' in (x as object)
}
