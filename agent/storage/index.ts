// The pool types this agent knows, and opening a pool from its definition (cached: a definition opens once).
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { PoolDef, VolumeInfo, VolumeRef } from '../../src/protocol/storage.ts'
import { cacheDir } from '../image/cache.ts'
import { Roots } from '../roots.ts'
import type { Reaper } from '../service.ts'
import { dirPoolType } from './dir.ts'
import type { PoolContext, PoolDriver, PoolTypeModule } from './driver.ts'
import { nfsPoolType } from './nfs.ts'
import { info, type Vol, type VolumeEnv } from './volumes.ts'

/** Every pool type by name: one line per type (see driver.ts). */
export const poolTypeModules: { [T in PoolDef['type']]?: PoolTypeModule<T> } = {
  dir: dirPoolType,
  nfs: nfsPoolType,
}

/** The reapers of every pool type's record kinds (registered by the storage service and the keeper). */
export function poolReapers(): Record<string, Reaper> {
  return Object.assign({}, ...Object.values(poolTypeModules).map(m => m?.reapers ?? {}))
}

export class Pools {
  private readonly open = new Map<string, Promise<PoolDriver>>()
  constructor(private readonly ctx: PoolContext) {}

  get(def: PoolDef): Promise<PoolDriver> {
    const key = JSON.stringify(def)
    let p = this.open.get(key)
    if (!p) {
      const module = poolTypeModules[def.type] as PoolTypeModule | undefined
      if (!module) {
        const known = Object.keys(poolTypeModules).join(', ')
        throw new VtError(
          ErrorNames.badRequest,
          `pool "${def.name}" has type "${def.type}", which this agent does not support (it supports: ${known})`,
          { code: 'POOL_TYPE' },
        )
      }
      p = module.open(def as never, this.ctx)
      // A failed open is not cached: the next call tries again (and says why again).
      p.catch(() => this.open.delete(key))
      this.open.set(key, p)
    }
    return p
  }
}

/** The pools of an agent and what its volumes' backing chains may read (its roots and the image cache). */
export function agentStorage(ctx: PoolContext): {
  pools: Pools
  env: VolumeEnv
  vol(ref: VolumeRef): Promise<Vol>
  /** A volume's info (it must exist; its backing chain confined): what a VM disk on it opens. */
  resolve(ref: VolumeRef): Promise<VolumeInfo>
} {
  const pools = new Pools(ctx)
  const readable = new Roots([...ctx.roots, cacheDir()])
  const env: VolumeEnv = { readable: real => readable.contains(real) }
  const vol = async (ref: VolumeRef): Promise<Vol> => ({ driver: await pools.get(ref.pool), name: ref.name })
  return { pools, env, vol, resolve: async ref => info(await vol(ref), env) }
}
