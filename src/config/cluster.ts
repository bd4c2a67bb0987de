// The `cluster` slot of a project: which hosts its tests run on. Owned by the control plane; the config
// schema imports `clusterConfigSchema` from here so that an unknown key is reported with its path.
import { z } from 'zod'
import { dirPoolDef, nfsPoolDef, type PoolDef, poolName, poolTypes } from '../protocol/storage.ts'
import { LEASE_SECONDS } from '../protocol/wire.ts'

export interface RemoteHostConfig {
  name: string
  /** ws:// (loopback only) or wss:// URL of a running `vt agent`. */
  url: string
  labels?: Record<string, string>
  /** Per-host token; defaults to the cluster's token. */
  token?: TokenSource
}

export type TokenSource = { env: string } | { file: string } | { value: string }

export interface ClusterConfig {
  /** A number starts that many embedded local agents; a list names remote agents. */
  hosts: number | RemoteHostConfig[]
  /** Embedded hosts only: 'netns' puts every agent in its own network namespace (needs root). */
  isolation?: 'auto' | 'netns' | 'none'
  /** Labels for embedded hosts, by index. */
  labels?: Record<string, string>[]
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
