// Storage pools and volumes on this host (contract: src/protocol/storage.ts). Each volume a session makes is
// recorded with it (the pool driver says how: a path for a dir pool) before it exists, so the session's reaper
// or, after a kill -9 of the agent, its keeper removes it; an explicit remove forgets the record.
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { PoolDef, VolumeInfo } from '../../src/protocol/storage.ts'
import { implement } from '../service.ts'
import { agentStorage, poolReapers } from '../storage/index.ts'
import { startExport } from '../storage/nbd.ts'
import * as ops from '../storage/volumes.ts'

export const storageService = implement('storage', agent => {
  for (const [kind, reaper] of Object.entries(poolReapers())) agent.registerReaper(kind, reaper)
  const { pools, env, vol } = agentStorage({ roots: agent.roots, stateDir: agent.stateDir, log: agent.log })

  return session => {
    /** Resource ids of this session's volumes, by pool definition and name. */
    const mine = new Map<string, string>()
    /** qemu-nbd processes serving this session's exports, by export id. */
    const exports = new Map<string, string>()
    const key = (v: ops.Vol) => `${JSON.stringify(v.driver.def)}\0${v.name}`

    /** Records the volume first, makes it, and forgets the record (removing any part) when making fails. */
    const making = async (v: ops.Vol, make: () => Promise<void>): Promise<VolumeInfo> => {
      const file = await ops.fresh(v)
      const id = await session.track(v.driver.record(v.name, file))
      try {
        await make()
      } catch (e) {
        await session.untrack(id, { reap: true })
        throw e
      }
      mine.set(key(v), id)
      return ops.info(v, env)
    }
    const progress = (op: string, id: string | undefined) =>
      id ? (done: number, total: number) => session.emit('progress', { id, op, done, total }) : undefined

    return {
      async create({ volume, size, format, from, fromUrl, progress: pid }) {
        const v = await vol(volume)
        if (fromUrl) {
          return making(v, () =>
            ops.copyFromUrl(fromUrl, v, { format, progress: progress('create', pid), signal: session.signal }),
          )
        }
        if (from) {
          const src = await vol(from)
          return making(v, () =>
            ops.copy(src, v, env, { format, size, progress: progress('create', pid), signal: session.signal }),
          )
        }
        if (!size) {
          throw new VtError(
            ErrorNames.badRequest,
            `volume "${volume.name}" in pool "${volume.pool.name}": give a size (e.g. '1G') or from`,
          )
        }
        return making(v, () => ops.createEmpty(v, size, format ?? 'qcow2'))
      },
      async clone({ from, to }) {
        const src = await vol(from)
        const v = await vol(to)
        return making(v, () => ops.clone(src, v, env))
      },
      async convert({ from, to, format, compress, progress: pid }) {
        const src = await vol(from)
        const v = await vol(to)
        return making(v, () =>
          ops.copy(src, v, env, { format, compress, progress: progress('convert', pid), signal: session.signal }),
        )
      },
      async export({ volume, address }) {
        const v = await vol(volume)
        const file = await ops.existing(v)
        const { format } = await ops.info(v, env)
        const e = await startExport(file, format, address, session.dir)
        exports.set(e.id, await session.track({ kind: 'process', pid: e.pid, label: `qemu-nbd ${e.url}` }))
        return { id: e.id, url: e.url }
      },
      async unexport(id) {
        const rid = exports.get(id)
        if (!rid) return false
        exports.delete(id)
        await session.untrack(rid, { reap: true })
        return true
      },
      snapshot: async ({ volume, name }) => ops.snapshot(await vol(volume), name, env),
      restore: async ({ volume, name }) => ops.restore(await vol(volume), name, env),
      deleteSnapshot: async ({ volume, name }) => ops.deleteSnapshot(await vol(volume), name, env),
      snapshots: async ref => ops.snapshots(await vol(ref), env),
      info: async ref => ops.info(await vol(ref), env),
      check: async ref => ops.check(await vol(ref), env),
      async remove(ref) {
        const v = await vol(ref)
        await ops.filenameOf(v)
        const removed = await v.driver.remove(v.name)
        const id = mine.get(key(v))
        if (id) {
          mine.delete(key(v))
          await session.untrack(id)
        }
        return removed
      },
      async list(def: PoolDef) {
        const driver = await pools.get(def)
        const names = await driver.list()
        const out: VolumeInfo[] = []
        for (const name of names) {
          // A volume removed meanwhile, or one that fails its checks, is not listed (info explains it).
          const i = await ops.info({ driver, name }, env).catch(() => undefined)
          if (i) out.push(i)
        }
        return out
      },
      async capacity(def: PoolDef) {
        const driver = await pools.get(def)
        const space = await driver.space()
        const names = await driver.list()
        let usedBytes = 0
        for (const name of names) {
          const i = await ops.info({ driver, name }, env).catch(() => undefined)
          usedBytes += i?.actualSize ?? 0
        }
        return { pool: def.name, ...space, usedBytes, volumes: names.length }
      },
    }
  }
})
