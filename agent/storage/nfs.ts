// The `nfs` pool: one export that every host sees. A volume is a file directly in the export, named by the URL
// nfs://SERVER/EXPORT/NAME, which QEMU and qemu-img open themselves (libnfs from qemu-block-extra; no kernel
// mount). What qemu-img cannot do (look up, list, remove, measure) goes through our small NFSv3 client
// (nfsClient.ts) to the same server, so a remote server works like the embedded one and a session's volumes are
// reaped over NFS even after a kill -9 of the agent.
import { existsSync } from 'node:fs'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { PoolDef } from '../../src/protocol/storage.ts'
import type { ResourceRecord } from '../service.ts'
import type { PoolDriver, PoolTypeModule } from './driver.ts'
import { TEMP_SUFFIX } from './names.ts'
import { NfsError, type NfsTarget, withNfs } from './nfsClient.ts'

const NFS_BLOCK_MODULE = '/usr/lib/x86_64-linux-gnu/qemu/block-nfs.so'
const SERVER = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/
const EXPORT = /^(\/[A-Za-z0-9_.+-]+)+\/?$|^\/$/

type NfsDef = Extract<PoolDef, { type: 'nfs' }>

/** The server and export of a definition, checked so that nothing in them can bend the URLs built from them. */
export function nfsTarget(def: NfsDef): NfsTarget & { export: string } {
  if (!def.server || !def.export) {
    throw new VtError(
      ErrorNames.badRequest,
      `pool "${def.name}" of type nfs names no ${def.server ? 'export' : 'server'}: give { server, export } (an embedded cluster fills both in with its own NFS server)`,
      { code: 'POOL_CONFIG' },
    )
  }
  if (!SERVER.test(def.server)) {
    throw new VtError(
      ErrorNames.badRequest,
      `pool "${def.name}": server ${JSON.stringify(def.server)} is not a host name or IPv4 address`,
      { code: 'POOL_CONFIG' },
    )
  }
  if (!EXPORT.test(def.export) || def.export.split('/').some(s => s === '.' || s === '..')) {
    throw new VtError(
      ErrorNames.badRequest,
      `pool "${def.name}": export ${JSON.stringify(def.export)} is not an absolute path of plain names (letters, digits, _ . + -)`,
      { code: 'POOL_CONFIG' },
    )
  }
  return { server: def.server, export: def.export.replace(/\/+$/, '') || '/' }
}

/** The URL of a file in the export (the volume name is already checked: a plain name). */
export function nfsUrl(t: NfsTarget, name: string): string {
  return `nfs://${t.server}${t.export === '/' ? '' : t.export}/${name}`
}

/** NFS failures as the agent's errors, naming the pool. */
function failed(pool: string, e: unknown): VtError {
  if (e instanceof VtError) return e
  const status = e instanceof NfsError ? e.status : undefined
  return new VtError(
    status === 2 ? ErrorNames.notFound : ErrorNames.badRequest,
    `pool "${pool}": ${(e as Error).message}`,
    { code: 'NFS' },
  )
}

export const nfsPoolType: PoolTypeModule<'nfs'> = {
  type: 'nfs',
  async open(def) {
    const t = nfsTarget(def)
    if (!existsSync(NFS_BLOCK_MODULE)) {
      throw new VtError(
        ErrorNames.badRequest,
        `pool "${def.name}" of type nfs: this host's QEMU has no nfs:// support (${NFS_BLOCK_MODULE}); install the Debian package qemu-block-extra`,
        { code: 'NFS_UNSUPPORTED' },
      )
    }
    const nfs = async <T>(fn: Parameters<typeof withNfs<T>>[1]): Promise<T> => {
      try {
        return await withNfs(t, fn)
      } catch (e) {
        throw failed(def.name, e)
      }
    }
    await nfs(c => c.fsstat()) // reachable and mountable now, or a clear error at once
    const where = (name: string) => `volume "${name}" in pool "${def.name}"`

    const driver: PoolDriver = {
      def,
      async filename(name) {
        const a = await nfs(c => c.lookup(name))
        if (a?.type === 'symlink') {
          throw new VtError(
            ErrorNames.outsideRoots,
            `${where(name)} is a symbolic link: refused, a volume must be a file in the export ${t.server}:${t.export}`,
            { code: 'VOLUME_SYMLINK' },
          )
        }
        if (a && a.type !== 'file') {
          throw new VtError(ErrorNames.badRequest, `${where(name)} is not a regular file (${nfsUrl(t, name)})`, {
            code: 'NOT_A_VOLUME',
          })
        }
        return nfsUrl(t, name)
      },
      async blockdev(name) {
        await driver.filename(name)
        return {
          driver: 'nfs',
          server: { type: 'inet', host: t.server },
          path: `${t.export === '/' ? '' : t.export}/${name}`,
        }
      },
      async exists(name) {
        return (await nfs(c => c.lookup(name))) !== undefined
      },
      async remove(name) {
        await driver.filename(name)
        return nfs(c => c.remove(name))
      },
      async list() {
        const entries = await nfs(c => c.list())
        return entries
          .filter(e => e.type === 'file' && !e.name.startsWith('.') && !e.name.endsWith(TEMP_SUFFIX))
          .map(e => e.name)
          .sort()
      },
      async space() {
        const s = await nfs(c => c.fsstat())
        return { totalBytes: s.totalBytes, freeBytes: s.availableBytes }
      },
      record(name) {
        return { kind: 'nfs-volume', server: t.server, export: t.export, name, label: `volume ${def.name}/${name}` }
      },
      // A clone's backing file is another volume of the same export (a plain name after it).
      allows(filename) {
        const prefix = nfsUrl(t, '')
        return filename.startsWith(prefix) && /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(filename.slice(prefix.length))
      },
    }
    return driver
  },
  reapers: {
    /** A session's volume, removed over NFS (the agent need not see the export's directory). */
    'nfs-volume': async (rec: ResourceRecord) => {
      const { server, export: exp, name } = rec as ResourceRecord & { server: string; export: string; name: string }
      await withNfs({ server, export: exp }, c => c.remove(name))
    },
  },
}
