// The `storage` service: volumes (disk images) in storage pools, made and changed with qemu-img on the host.
// Stateless on the agent: every call carries its pool's definition (`PoolDef`, resolved by the controller from
// the config), so the agent keeps no pool registry and a VM disk or a migration destination can name a volume
// the same way. Every volume a session creates is recorded with it and reaped with it.
//
// A POOL TYPE is one entry in `poolTypes` below (the zod schema of its definition, shared by the config and the
// agent) plus a driver on the agent (agent/storage/driver.ts says how) plus one line in the controller's table of
// what the type means for migration (src/storage/types.ts).
import { z } from 'zod'
import { absolutePath, call, defineService, event } from './contract.ts'

export const poolName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, 'a pool name: a letter, then letters, digits, _ or - (at most 32)')

/** A `dir` pool: a directory on each host (host-local). Default: `<the agent's first root>/pools/<name>`. */
export const dirPoolDef = z.strictObject({
  name: poolName,
  type: z.literal('dir'),
  /** The directory on every host (must lie inside the agent's allowed roots). */
  path: absolutePath.optional(),
})

/** An `nfs` pool: one export every host sees; QEMU and qemu-img open `nfs://` URLs themselves. */
export const nfsPoolDef = z.strictObject({
  name: poolName,
  type: z.literal('nfs'),
  /** Server address (an embedded cluster fills in its own server). */
  server: z.string().min(1).max(255).optional(),
  /** Export path on the server, e.g. '/vt'. */
  export: z.string().min(1).max(1024).optional(),
})

/** Every pool type by name. Adding one: its schema here, its driver in agent/storage/, its line in src/storage/types.ts. */
export const poolTypes = { dir: dirPoolDef, nfs: nfsPoolDef } as const
export type PoolType = keyof typeof poolTypes

export const poolDef = z.discriminatedUnion('type', [dirPoolDef, nfsPoolDef])
export type PoolDef = z.output<typeof poolDef>

/** Volume names are plain file names inside the pool; the agent checks them and explains a refusal. */
export const volumeName = z.string().min(1).max(255)
export const volumeRef = z.strictObject({ pool: poolDef, name: volumeName })
export type VolumeRef = z.output<typeof volumeRef>

export const imageFormat = z.enum(['qcow2', 'raw'])
export type ImageFormat = z.output<typeof imageFormat>

/** '64M', '10G', '512K', '1T' or a number of bytes (as a string). */
export const volumeSize = z.string().regex(/^\d+[KMGT]?$/i, 'a size like "64M", "10G" or a number of bytes')

export const snapshotName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a snapshot name: letters, digits, _ . - (at most 64)')

export interface VolumeInfo {
  pool: string
  name: string
  /** What QEMU and qemu-img open: a path on the host, or a URL (nfs://...). */
  filename: string
  /** QEMU's protocol-layer blockdev options for it (`{ driver: 'file', filename }` for a dir pool). */
  blockdev: Record<string, unknown>
  format: string
  virtualSize: number
  /** Bytes it takes in the pool (sparse files count what is allocated). */
  actualSize: number
  /** The image it is an overlay on (a clone), if any. */
  backing?: string
  snapshots: SnapshotInfo[]
}

export interface SnapshotInfo {
  name: string
  /** Seconds since the epoch. */
  date: number
  vmStateSize: number
}

export interface CheckResult {
  ok: boolean
  /** qemu-img check's counts (0 for a raw image, which has no metadata). */
  corruptions: number
  leaks: number
  checkErrors: number
  /** qemu-img's own words when not ok. */
  message?: string
}

export interface PoolCapacity {
  pool: string
  /** The file system (or export) holding the pool: total and free bytes. */
  totalBytes: number
  freeBytes: number
  /** Bytes the pool's volumes take. */
  usedBytes: number
  volumes: number
}

/** Progress of a long operation (create from, convert, copy): bytes of the virtual size done so far. */
export interface StorageProgressEvent {
  /** The caller's id for the operation (`progress` of the call). */
  id: string
  op: string
  done: number
  total: number
}

const progressId = z.string().min(1).max(64).optional()

export const storage = defineService(
  'storage',
  {
    /** An empty volume of `size`, or a full copy of `from` (optionally grown to `size`). */
    create: call(
      z.strictObject({
        volume: volumeRef,
        size: volumeSize.optional(),
        format: imageFormat.optional(),
        from: volumeRef.optional(),
        /** A copy of what an NBD server serves (another host's `export`): how volumes cross hosts. */
        fromUrl: z
          .string()
          .regex(/^nbd:\/\/[A-Za-z0-9.:[\]-]+:\d+\/[A-Za-z0-9_.-]+$/, 'an nbd://address:port/name URL')
          .optional(),
        progress: progressId,
      }),
    ).returns<VolumeInfo>(),
    /** Serves a volume read-only over NBD on `address` (until `unexport` or the session ends). */
    export: call(z.strictObject({ volume: volumeRef, address: z.string().min(1).max(64) })).returns<{
      id: string
      url: string
    }>(),
    unexport: call(z.string().min(1).max(64)).returns<boolean>(),
    /** A qcow2 overlay whose backing file is `from`: O(1) whatever the size. */
    clone: call(z.strictObject({ from: volumeRef, to: volumeRef })).returns<VolumeInfo>(),
    /** A copy of `from` in `format` (the whole backing chain flattened into one image). */
    convert: call(
      z.strictObject({
        from: volumeRef,
        to: volumeRef,
        format: imageFormat.optional(),
        compress: z.boolean().optional(),
        progress: progressId,
      }),
    ).returns<VolumeInfo>(),
    snapshot: call(z.strictObject({ volume: volumeRef, name: snapshotName })).returns<SnapshotInfo[]>(),
    restore: call(z.strictObject({ volume: volumeRef, name: snapshotName })).returns<void>(),
    deleteSnapshot: call(z.strictObject({ volume: volumeRef, name: snapshotName })).returns<boolean>(),
    snapshots: call(volumeRef).returns<SnapshotInfo[]>(),
    info: call(volumeRef).returns<VolumeInfo>(),
    check: call(volumeRef).returns<CheckResult>(),
    /** Removes a volume (whoever made it); false when there was none. */
    remove: call(volumeRef).returns<boolean>(),
    list: call(poolDef).returns<VolumeInfo[]>(),
    capacity: call(poolDef).returns<PoolCapacity>(),
  },
  { progress: event<StorageProgressEvent>() },
)
