// The pool-driver interface: what the agent needs from one kind of storage pool.
//
// HOW A POOL TYPE PLUGS IN (nfs, later iSCSI or Ceph RBD):
//   1. src/protocol/storage.ts: the schema of its definition (`nfsPoolDef`) in `poolTypes` and `poolDef`; the
//      config (src/config/cluster.ts) and the agent validate with it.
//   2. agent/storage/<type>.ts: `export const nfsPoolType: PoolTypeModule<'nfs'> = { type: 'nfs', open, reapers }`.
//      `open(def, ctx)` returns a `PoolDriver` for that definition: where a volume is (`filename`: a path or
//      a URL that qemu-img and QEMU open themselves, e.g. nfs://server/export/name), QEMU's protocol node for it
//      (`blockdev`), existence, removal, listing, capacity, and the record by which a session reaps a volume
//      (`record`; a custom kind needs its reaper in `reapers`, which the storage service and the keeper's
//      reap-state.ts both register).
//   3. agent/storage/index.ts: one line in `poolTypeModules`.
//   4. src/storage/types.ts (controller): whether a volume of the type is visible from every host (so a VM disk
//      in it migrates without copying) and how the embedded cluster fills in the definition.
// Everything on top (create, clone, snapshot, convert, check, info, progress, session records) is generic over
// `filename` (agent/storage/volumes.ts) and needs nothing from the driver.
import type { PoolCapacity, PoolDef } from '../../src/protocol/storage.ts'
import type { Logger, Reaper, ResourceSpec } from '../service.ts'

export interface PoolContext {
  /** The agent's allowed roots (real paths): a dir pool must lie inside one. */
  roots: string[]
  stateDir: string
  log: Logger
}

export interface PoolDriver {
  readonly def: PoolDef
  /**
   * Where volume `name` is, as qemu-img and QEMU open it. The name is already checked (agent/storage/names.ts);
   * the driver refuses what would leave the pool (a symlink out of it) with a clear error.
   */
  filename(name: string): Promise<string>
  /** QEMU's protocol-layer blockdev options for the volume (the format layer goes on top). */
  blockdev(name: string): Promise<Record<string, unknown>>
  exists(name: string): Promise<boolean>
  /** Removes the volume; false when it did not exist. */
  remove(name: string): Promise<boolean>
  /** Names of the volumes in the pool. */
  list(): Promise<string[]>
  /** Total and free bytes of what holds the pool (usage is summed by the caller from the volumes). */
  space(): Promise<Pick<PoolCapacity, 'totalBytes' | 'freeBytes'>>
  /** What a session records so that its reaper removes the volume (e.g. `{ kind: 'path', path }`). */
  record(name: string, filename: string): ResourceSpec
  /** Image files a volume's backing chain may reference besides the pool itself (a clone's base elsewhere). */
  allows?(filename: string): boolean
}

export interface PoolTypeModule<T extends PoolDef['type'] = PoolDef['type']> {
  type: T
  open(def: Extract<PoolDef, { type: T }>, ctx: PoolContext): Promise<PoolDriver>
  /** Reapers of the record kinds this driver's `record` uses beyond 'path' and 'process'. */
  reapers?: Record<string, Reaper>
}
