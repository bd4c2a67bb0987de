// The `cluster` slot of a project: which hosts its tests run on. Owned by the control plane; the config
// schema imports `clusterConfigSchema` from here so that an unknown key is reported with its path.
import { z } from 'zod'
import { dirPoolDef, nfsPoolDef, type PoolDef, poolName, poolTypes } from '../protocol/storage.ts'
import { LEASE_SECONDS } from '../protocol/wire.ts'
import { formatBytes, machineCapacity, parseSize, plural, splitCapacity } from '../util/capacity.ts'

export interface RemoteHostConfig {
  name: string
  /** ws:// (loopback only) or wss:// URL of a running `vt agent`. */
  url: string
  labels?: Record<string, string>
  /** Per-host token; defaults to the cluster's token. */
  token?: TokenSource
}

/** What one host offers VMs and reservations. */
export interface CapacityConfig {
  /** Memory: a size like '4G', or bytes. Never more than the machine has, over all hosts. */
  memory?: string | number
  /** vCPUs (default: the host's share of 16 per core of the machine). */
  cpus?: number
}

export type TokenSource = { env: string } | { file: string } | { value: string }

export interface ClusterConfig {
  /** A number starts that many embedded local agents; a list names remote agents. */
  hosts: number | RemoteHostConfig[]
  /** Embedded hosts only: 'netns' puts every agent in its own network namespace (needs root). */
  isolation?: 'auto' | 'netns' | 'none'
  /** Labels for embedded hosts, by index. */
  labels?: Record<string, string>[]
  /**
   * Embedded hosts only: what each host offers VMs (memory, vCPUs), or a list by host index. Hosts without a
   * value share what the machine has left equally (by default all of it: N hosts never offer more than one
   * machine). Remote agents offer what `vt agent --capacity-memory/--capacity-cpus` say.
   */
  capacity?: CapacityConfig | CapacityConfig[]
  token?: TokenSource
  tls?: { ca?: string; cert?: string; key?: string }
  /** Seconds a session survives without heartbeats before its agent reaps everything it created. */
  leaseSeconds?: number
  storage?: {
    /** Storage pools by name (see docs/storage.md): `{ local: { type: 'dir' }, shared: { type: 'nfs' } }`. */
    pools?: Record<string, PoolConfig>
    /**
     * The older form. `{ type: 'dir', path? }`: a directory every embedded host sees, for disks with
     * `pool: 'shared'`. `{ type: 'nfs', server, export }` is the pool `shared` of type nfs.
     */
    shared?: { type: 'dir'; path?: string } | { type: 'nfs'; server: string; export: string }
  }
  /** Guest networks that exist on every host for the whole run, by name (see docs/networks.md). */
  networks?: Record<string, NetworkConfig>
}

/** A storage pool in the config: its definition without the name (the key is the name). */
export type PoolConfig = PoolDef extends infer D ? (D extends PoolDef ? Omit<D, 'name'> : never) : never

/** A guest network: one L2 segment over every host (bridge per host, VXLAN between hosts). */
export interface NetworkConfig {
  /** IPv4 subnet guests get addresses from, e.g. '10.77.0.0/24'. */
  subnet: string
  /** Default route the guests get (an address in the subnet, e.g. an attached host's). */
  gateway?: string
  /** VXLAN id (default: random per run, so two runs never share a segment). */
  vni?: number
  /** VXLAN UDP port (default 4789). */
  port?: number
  /** Underlay interface on each host (default: the one routing to the other hosts). */
  device?: string
}

const leaseRange = `must be between ${LEASE_SECONDS.min} and ${LEASE_SECONDS.max} seconds (2 s to 24 h; default 30)`
const hostsRange = 'must be between 1 and 16 embedded hosts (list remote hosts for more)'

const tokenSchema = z.union([
  z.strictObject({ env: z.string().min(1) }),
  z.strictObject({ file: z.string().min(1) }),
  z.strictObject({ value: z.string().min(1) }),
])

const ipv4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/

export const networkConfigSchema = z.strictObject({
  subnet: z
    .string()
    .regex(
      /^(\d{1,3}\.){3}\d{1,3}\/([8-9]|[12]\d|30)$/,
      "an IPv4 subnet with a prefix from /8 to /30, like '10.77.0.0/24'",
    )
    .refine(s => ipv4.test(s.split('/')[0]), 'an IPv4 subnet like 10.77.0.0/24'),
  gateway: z.string().regex(ipv4, 'an IPv4 address like 10.77.0.1').optional(),
  vni: z
    .number()
    .int()
    .min(1)
    .max(2 ** 24 - 1)
    .optional(),
  port: z.number().int().min(1).max(65535).optional(),
  device: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/, 'an interface name')
    .optional(),
})

const MIN_HOST_MEMORY = 64 * 1024 * 1024
const memoryMessage = "a size like '4G' or '512M' (a number is bytes), at least 64M"

const capacitySchema = z.strictObject({
  memory: z
    .union([
      z.number().int().min(MIN_HOST_MEMORY, memoryMessage),
      z.string().refine(s => sizeOf(s) !== undefined && (sizeOf(s) as number) >= MIN_HOST_MEMORY, memoryMessage),
    ])
    .optional(),
  cpus: z.number().int('must be a whole number of vCPUs').min(1, 'must be at least 1 vCPU').max(4096).optional(),
})

function sizeOf(s: string | number): number | undefined {
  try {
    return parseSize(s)
  } catch {
    return undefined
  }
}

/** Embedded hosts' capacity, each host's: explicit values kept, the rest of this machine shared by the others. */
export function embeddedCapacity(cluster: Pick<ClusterConfig, 'hosts' | 'capacity'>): {
  memoryBytes: number
  cpus: number
}[] {
  const count = typeof cluster.hosts === 'number' ? cluster.hosts : 0
  const given = cluster.capacity
  const list = Array.isArray(given) ? given : Array.from({ length: count }, () => given)
  const explicit = list.map(c => ({
    ...(c?.memory !== undefined ? { memoryBytes: parseSize(c.memory) } : {}),
    ...(c?.cpus !== undefined ? { cpus: c.cpus } : {}),
  }))
  return splitCapacity(machineCapacity(), count, explicit)
}

/** Capacity that cannot be: on remote hosts, past the last host, or more memory than this machine has. */
function checkCapacity(cluster: ClusterConfig, ctx: z.RefinementCtx): void {
  const capacity = cluster.capacity
  if (capacity === undefined) return
  if (typeof cluster.hosts !== 'number') {
    ctx.addIssue({
      code: 'custom',
      path: ['capacity'],
      message:
        'is for embedded hosts (hosts: N); a remote agent offers what its own vt agent --capacity-memory and ' +
        '--capacity-cpus flags say',
    })
    return
  }
  const count = cluster.hosts
  const entries = Array.isArray(capacity) ? capacity : [capacity]
  // Bad values inside have issues of their own (zod still runs this check): add up only what is sound.
  if (!Number.isInteger(count) || entries.some(c => c?.memory !== undefined && sizeOf(c.memory) === undefined)) return
  if (Array.isArray(capacity) && capacity.length > count) {
    ctx.addIssue({
      code: 'custom',
      path: ['capacity', count],
      message: `there are ${plural(count, 'embedded host')}: give at most ${count} entries`,
    })
    return
  }
  const machine = machineCapacity().memoryBytes
  const hosts = embeddedCapacity(cluster)
  const list = Array.isArray(capacity) ? capacity : hosts.map(() => capacity)
  const explicit = list.reduce((sum, c) => sum + (c?.memory !== undefined ? parseSize(c.memory) : 0), 0)
  if (explicit > machine) {
    const what = Array.isArray(capacity)
      ? `the hosts' memory adds up to ${formatBytes(explicit)}`
      : `${count} hosts × ${formatBytes(parseSize(capacity.memory as string | number))} = ${formatBytes(explicit)}`
    ctx.addIssue({
      code: 'custom',
      path: Array.isArray(capacity) ? ['capacity'] : ['capacity', 'memory'],
      message:
        `${what}, more than this machine's ${formatBytes(machine)} (embedded hosts share one machine); give ` +
        'less, or leave memory out and the hosts share the machine equally',
      input: capacity,
    })
  } else if (hosts.some(h => h.memoryBytes < MIN_HOST_MEMORY)) {
    ctx.addIssue({
      code: 'custom',
      path: ['capacity'],
      message: `leaves less than 64M each to the hosts without a memory value (this machine has ${formatBytes(machine)})`,
      input: capacity,
    })
  }
}

export const clusterConfigSchema = z.strictObject({
  hosts: z.union([
    z.number().int('must be a whole number of hosts').min(1, hostsRange).max(16, hostsRange),
    z
      .array(
        z.strictObject({
          name: z.string().min(1),
          url: z.string().regex(/^wss?:\/\//, 'must be a ws:// or wss:// URL'),
          labels: z.record(z.string(), z.string()).optional(),
          token: tokenSchema.optional(),
        }),
      )
      .min(1),
  ]),
  isolation: z.enum(['auto', 'netns', 'none']).optional(),
  labels: z.array(z.record(z.string(), z.string())).optional(),
  capacity: z.union([capacitySchema, z.array(capacitySchema.optional())]).optional(),
  token: tokenSchema.optional(),
  tls: z
    .strictObject({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() })
    .optional(),
  leaseSeconds: z.number().min(LEASE_SECONDS.min, leaseRange).max(LEASE_SECONDS.max, leaseRange).optional(),
  storage: z
    .strictObject({
      pools: z
        .record(
          poolName,
          z.discriminatedUnion('type', [dirPoolDef.omit({ name: true }), nfsPoolDef.omit({ name: true })], {
            error: `an unknown pool type: the types are ${Object.keys(poolTypes).join(', ')}`,
          }),
        )
        .optional(),
      shared: z
        .union([
          z.strictObject({ type: z.literal('dir'), path: z.string().optional() }),
          z.strictObject({ type: z.literal('nfs'), server: z.string(), export: z.string() }),
        ])
        .optional(),
    })
    .refine(s => !(s.shared?.type === 'nfs' && s.pools?.shared), {
      message: "storage.shared of type 'nfs' is the pool named 'shared', and storage.pools.shared exists too: keep one",
    })
    .optional(),
  networks: z
    .record(
      z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, 'a network name: a letter, then letters, digits, _ or -'),
      networkConfigSchema,
    )
    .optional(),
})
// The capacity check runs on the whole slot (it needs hosts); zod reports it under cluster.capacity.
export const clusterConfigChecked = clusterConfigSchema.superRefine((c, ctx) => checkCapacity(c as ClusterConfig, ctx))

/** What the main process hands to workers once a project's cluster is up: enough to connect. */
export interface ClusterConnectionInfo {
  hosts: { name: string; url: string; token: string; address?: string; labels: Record<string, string> }[]
  /** Where the cluster's shared storage pool lives, when it has one. */
  sharedPool?: string
  /** The storage pools (`cluster.pool(name)`), resolved for the agents (an embedded NFS server filled in). */
  pools?: Record<string, PoolDef>
  leaseSeconds: number
  tls?: { ca?: string; cert?: string; key?: string }
  /** The project's declared guest networks. */
  networks?: Record<string, NetworkConfig>
}
