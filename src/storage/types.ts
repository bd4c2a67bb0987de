// What each pool type means to the controller: whether every host sees the same volumes (then a VM disk in it
// migrates without copying, and a clone's base may be on another host's view of the pool), and the pools a
// cluster config declares, as definitions for the agents. A new pool type adds its line to `poolTraits`.
import type { ClusterConfig } from '../config/cluster.ts'
import type { PoolDef, PoolType } from '../protocol/storage.ts'

export interface PoolTraits {
  /** Every host of the cluster sees the same volumes (nfs: one export). False: a directory per host (dir). */
  shared: boolean
}

export const poolTraits: Record<PoolType, PoolTraits> = {
  dir: { shared: false },
  nfs: { shared: true },
}

/**
 * The pools of a cluster config, by name. The older `storage.shared` of type nfs is the pool `shared` (never
 * silently ignored); of type dir it stays the cluster's shared directory (`pool: 'shared'` disks).
 */
export function poolDefsOf(storage: ClusterConfig['storage']): Record<string, PoolDef> {
  const out: Record<string, PoolDef> = {}
  for (const [name, p] of Object.entries(storage?.pools ?? {})) out[name] = { ...p, name } as PoolDef
  const legacy = storage?.shared
  if (legacy?.type === 'nfs' && !out.shared) {
    out.shared = { name: 'shared', type: 'nfs', server: legacy.server, export: legacy.export }
  }
  return out
}
