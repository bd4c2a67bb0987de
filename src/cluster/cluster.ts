// A connected cluster: one session per host, `host(name)`, and `select()` which books capacity on a host that
// fits. Bookings are kept by each host's agent, so parallel worker processes never overbook a host.

import type { ClusterConnectionInfo } from '../config/cluster.ts'
import { ErrorNames, VtError } from '../protocol/errors.ts'
import type { Reservation as ReservationData } from '../protocol/session.ts'
import type { PoolDef } from '../protocol/storage.ts'
import type { Arrival } from '../protocol/sync.ts'
import { currentTestInfo } from '../runner/worker/globals.ts'
import { Pool } from '../storage/pool.ts'
import { type BarrierOptions, barrier, share, type WaitOptions, wait, waitAll } from '../sync/api.ts'
import { bridgeHost, type RoleBook } from '../sync/hostBridge.ts'
import { describeNeed, parseSize as parseBytes } from '../util/capacity.ts'
import type { AgentRestarter } from './agentRestart.ts'
import { capacityOf, describeHosts, isCapacityError } from './capacity.ts'
import { AgentClient } from './client.ts'
import { Faults } from './faults.ts'
import { Host } from './host.ts'
import { MacRegistry, Network, type NetworkOptions } from './network.ts'
import { type StageResults, type Stages, stages } from './stages.ts'

export interface SelectOptions {
  /** Every label must match. */
  labels?: Record<string, string>
  /** Memory to reserve: bytes, or a size like '512M', '2G'. */
  minMemory?: number | string
  cpus?: number
  /** An accelerator the host must offer ('kvm', 'tcg'). */
  accel?: string
  /** Hosts to leave out (e.g. the source of a migration). */
  exclude?: (Host | string)[]
  /** Milliseconds to wait for capacity to free up. Default 0: fail at once, naming what is free where. */
  timeout?: number
}

export class Reservation {
  released = false
  constructor(
    readonly host: Host,
    readonly data: ReservationData,
    private readonly onRelease: (r: Reservation) => void,
  ) {}
  get id(): string {
    return this.data.id
  }
  async release(): Promise<void> {
    if (this.released) return
    this.released = true
    this.onRelease(this)
    await this.host.client
      .service('session')
      .release(this.data.id)
      .catch(() => {})
  }
}

/** '512M' → bytes. Plain numbers are bytes. */
export function parseSize(size: number | string): number {
  try {
    return parseBytes(size)
  } catch (e) {
    throw new VtError(ErrorNames.badRequest, (e as Error).message)
  }
}

/** Clusters this process connected and has not closed: what a paused `vt test --debug` run offers. */
export const openClusters = new Set<Cluster>()

export class Cluster {
  readonly reservations = new Set<Reservation>()
  /** Faults a spec injects (partition, slowLink, killQemu); all healed at the end of each test. */
  readonly faults = new Faults()
  private readonly networks = new Map<string, Network>()
  /** @internal MACs handed out on this cluster's networks (unique per VM). */
  readonly macs = new MacRegistry()

  /** Roles of VMs in role groups, for `vt-sync role` in guests. */
  readonly roles: RoleBook = new Map()
  private readonly bridges: ((reason: string) => void)[] = []

  constructor(
    readonly hosts: Host[],
    readonly sharedPool?: string,
    networks: Record<string, NetworkOptions> = {},
    private readonly pools: Record<string, PoolDef> = {},
    restartAgent?: AgentRestarter,
  ) {
    for (const [name, opts] of Object.entries(networks)) this.addNetwork(name, opts)
    // Host scripts and guests take part in barriers through their agent.
    for (const h of hosts) this.bridge(h)
    this.faults.restarted = h => this.renewHost(h)
    if (restartAgent) this.faults.restarter = restartAgent
  }

  private bridge(h: Host): void {
    const stop = bridgeHost(h, this.roles)
    this.bridges.push(stop)
    h.client.onClosed(why => stop(`the agent of host ${h.name} is gone (${why})`))
  }

  /** A new session with host `h`'s restarted agent: barriers bridged again, the networks made again there. */
  private async renewHost(h: Host): Promise<void> {
    await h.client.renew()
    this.bridge(h)
    for (const r of [...this.reservations]) if (r.host === h) this.reservations.delete(r)
    for (const net of this.networks.values()) await net.rejoin(h)
  }

  private addNetwork(name: string, opts: NetworkOptions): Network {
    const net = new Network(name, opts, this.hosts, this.macs, this.faults)
    this.networks.set(name, net)
    return net
  }

  /** A guest network declared in the config (`cluster.networks`) or made with createNetwork. */
  network(name: string): Network {
    const net = this.networks.get(name)
    if (!net) {
      const known = [...this.networks.keys()]
      throw new VtError(
        ErrorNames.notFound,
        `no network named "${name}" in this cluster (${known.length ? `networks: ${known.join(', ')}` : 'it has none'}): declare it in vt.config.ts as cluster: { networks: { ${name}: { subnet: '10.77.0.0/24' } } } or call cluster.createNetwork('${name}', { subnet })`,
      )
    }
    return net
  }

  /** The names of the storage pools declared in the config. */
  get poolNames(): string[] {
    return Object.keys(this.pools)
  }

  /** A storage pool declared in the config (`cluster.storage.pools`). */
  pool(name: string): Pool {
    const def = this.pools[name]
    if (!def) {
      const known = Object.keys(this.pools)
      throw new VtError(
        ErrorNames.notFound,
        `no storage pool named "${name}" in this cluster (${known.length ? `pools: ${known.join(', ')}` : 'it has none'}): declare it in vt.config.ts as cluster: { storage: { pools: { ${name}: { type: 'dir' } } } }`,
        { code: 'NO_POOL' },
      )
    }
    return new Pool(def, this.hosts)
  }

  /** Creates a guest network on every host now (for this worker's session; gone when it ends). */
  async createNetwork(name: string, options: NetworkOptions): Promise<Network> {
    if (this.networks.has(name))
      throw new VtError(ErrorNames.badRequest, `a network named "${name}" already exists in this cluster`)
    if (!/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(name))
      throw new VtError(
        ErrorNames.badRequest,
        `"${name}" is not a network name: a letter, then letters, digits, _ or -`,
      )
    if (!/^(\d{1,3}\.){3}\d{1,3}\/([8-9]|[12]\d|30)$/.test(options?.subnet ?? ''))
      throw new VtError(
        ErrorNames.badRequest,
        `createNetwork('${name}'): subnet must be like '10.77.0.0/24' (prefix /8 to /30), got ${String(options?.subnet)}`,
      )
    const net = this.addNetwork(name, options)
    try {
      await net.ready()
    } catch (e) {
      this.networks.delete(name)
      throw e
    }
    // Made inside a test: it ends with the test (the fixtures call endTest), so later tests start clean.
    if (currentTestInfo()) this.testNetworks.add(name)
    return net
  }

  private readonly testNetworks = new Set<string>()

  /** @internal Removes the networks the test created (after its VMs are gone). */
  async endTest(): Promise<void> {
    for (const name of this.testNetworks) {
      const net = this.networks.get(name)
      this.networks.delete(name)
      await net?.destroy()
    }
    this.testNetworks.clear()
  }

  /** Connects to every host of the info the main process handed over. */
  static async connect(
    info: ClusterConnectionInfo,
    options: { clientName?: string; restartAgent?: AgentRestarter } = {},
  ): Promise<Cluster> {
    const settled = await Promise.allSettled(
      info.hosts.map(async h => {
        const client = await AgentClient.connect({
          url: h.url,
          token: h.token,
          name: h.name,
          leaseSeconds: info.leaseSeconds,
          tls: info.tls,
          clientName: options.clientName,
        })
        return new Host(client, h.url, h.labels, h.address)
      }),
    )
    const hosts = settled.flatMap(s => (s.status === 'fulfilled' ? [s.value] : []))
    const failed = settled.flatMap(s => (s.status === 'rejected' ? [s.reason as Error] : []))
    if (failed.length) {
      await Promise.all(hosts.map(h => h.close()))
      throw new VtError(
        ErrorNames.connectionLost,
        `cannot connect to the cluster: ${failed.map(e => e.message).join('; ')}`,
        {
          cause: failed[0],
        },
      )
    }
    const cluster = new Cluster(hosts, info.sharedPool, info.networks, info.pools, options.restartAgent)
    openClusters.add(cluster)
    return cluster
  }

  host(name: string): Host {
    const host = this.hosts.find(h => h.name === name)
    if (!host) {
      throw new VtError(
        ErrorNames.notFound,
        `no host named "${name}" in this cluster (hosts: ${this.hosts.map(h => h.name).join(', ')})`,
      )
    }
    return host
  }

  /**
   * Picks a host that matches and books the capacity there. Hosts with the most free memory are tried
   * first; the agent refuses a booking that does not fit, so two workers never get the same last slot.
   */
  async select(options: SelectOptions = {}): Promise<Reservation> {
    const memoryBytes = options.minMemory === undefined ? 0 : parseSize(options.minMemory)
    const cpus = options.cpus ?? 0
    const excluded = new Set((options.exclude ?? []).map(h => (typeof h === 'string' ? h : h.name)))
    const reasons: string[] = []
    const candidates = this.hosts.filter(h => {
      if (excluded.has(h.name)) return false
      for (const [k, v] of Object.entries(options.labels ?? {})) {
        if (h.labels[k] !== v) {
          reasons.push(`${h.name}: label ${k}=${h.labels[k] ?? '(unset)'}, wanted ${v}`)
          return false
        }
      }
      if (options.accel && !h.facts.accelerators.includes(options.accel)) {
        reasons.push(`${h.name}: no ${options.accel} (has ${h.facts.accelerators.join(', ') || 'none'})`)
        return false
      }
      return true
    })
    if (candidates.length === 0) {
      throw new VtError(
        ErrorNames.capacity,
        `no host matches ${JSON.stringify(options)}: ${reasons.join('; ') || 'no hosts'}`,
        {
          code: 'NO_MATCH',
        },
      )
    }
    const want = { memoryBytes, cpus }
    const timeout = options.timeout ?? 0
    const deadline = Date.now() + timeout
    for (;;) {
      const status = await capacityOf(candidates)
      // More than any host offers at all never fits: no waiting.
      const ever = status.some(s => s.status.total.memoryBytes >= memoryBytes && s.status.total.cpus >= cpus)
      status.sort((a, b) => b.status.free.memoryBytes - a.status.free.memoryBytes)
      for (const { host } of status) {
        try {
          const data = await host.client.service('session').reserve(want)
          const r = new Reservation(host, data, x => this.reservations.delete(x))
          this.reservations.add(r)
          return r
        } catch (e) {
          if (!isCapacityError(e)) throw e
        }
      }
      if (!ever || Date.now() >= deadline) {
        const waited = ever && timeout > 0 ? ` within ${Math.round(timeout / 100) / 10} s` : ''
        throw new VtError(
          ErrorNames.capacity,
          `no host has room for ${describeNeed(want)}${waited}: ${describeHosts(await capacityOf(candidates))}`,
          { code: 'CAPACITY' },
        )
      }
      await new Promise(r => setTimeout(r, 250))
    }
  }

  /**
   * Waits until `parties` arrivals came at barrier `name`: this call, other workers' tests, host scripts and
   * guests running `vt-sync barrier name N`. Resolves with who arrived when; a timeout or a party that went
   * away (its worker died, its QEMU was killed) rejects with a SyncError naming who arrived and who is missing.
   */
  barrier(name: string, options: BarrierOptions): Promise<Arrival[]> {
    return barrier(name, options)
  }

  /** Shares a value under `key` for the whole run (`vt-sync send key value`). */
  share(key: string, value: string | number | boolean): Promise<void> {
    return share(key, value)
  }

  /** The latest value shared under `key`, waiting until one is (`vt-sync wait key`). */
  wait(key: string, options?: WaitOptions): Promise<string> {
    return wait(key, options)
  }

  /** Every value shared under `key`, once there are at least `count` (`vt-sync wait-all key count`). */
  waitAll(key: string, count: number, options?: WaitOptions): Promise<string[]> {
    return waitAll(key, count, options)
  }

  /**
   * CERN-style stages: `init` on every node at once, then `run`, then `finalize` (always). Each stage is a
   * step with a sub-step per node.
   */
  stages<N>(nodes: readonly N[], s: Stages<N>): Promise<StageResults> {
    return stages(nodes, s)
  }

  /** Names of the guest networks declared for this cluster or created with createNetwork. */
  get networkNames(): string[] {
    return [...this.networks.keys()]
  }

  async releaseAll(): Promise<void> {
    await Promise.all([...this.reservations].map(r => r.release()))
  }

  /** Releases reservations and ends every host's session (the agents reap what the sessions created). */
  async close(): Promise<void> {
    openClusters.delete(this)
    for (const stop of this.bridges) stop('the cluster connection of this worker closed')
    await this.releaseAll()
    await Promise.all(this.hosts.map(h => h.close()))
  }
}
