// The `dir` pool: a directory on each host (host-local), by default `<the agent's first root>/pools/<name>`. A
// volume is a regular file directly in it; a symlink in its place is refused (it could lead anywhere), and the
// directory itself must resolve inside the agent's allowed roots.
import { lstat, mkdir, readdir, readlink, realpath, statfs, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import { Roots } from '../roots.ts'
import type { PoolDriver, PoolTypeModule } from './driver.ts'
import { TEMP_SUFFIX } from './names.ts'

async function lstatOrNull(path: string) {
  try {
    return await lstat(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw e
  }
}

export const dirPoolType: PoolTypeModule<'dir'> = {
  type: 'dir',
  async open(def, ctx) {
    const roots = new Roots(ctx.roots)
    const wanted = def.path ?? join(ctx.roots[0], 'pools', def.name)
    // Confined before and after creating it: a link swapped in on the way is caught by the second look.
    await roots.resolve(wanted)
    await mkdir(wanted, { recursive: true, mode: 0o755 })
    const dir = await roots.resolve(await realpath(wanted))
    const where = (name: string) => `volume "${name}" in pool "${def.name}"`

    const driver: PoolDriver = {
      def,
      async filename(name) {
        const path = join(dir, name)
        const st = await lstatOrNull(path)
        if (st?.isSymbolicLink()) {
          const target = await readlink(path).catch(() => '?')
          throw new VtError(
            ErrorNames.outsideRoots,
            `${where(name)} is a symbolic link (to ${target}): refused, a volume must be a file inside the pool ${dir}`,
            { code: 'VOLUME_SYMLINK' },
          )
        }
        if (st && !st.isFile()) {
          throw new VtError(ErrorNames.badRequest, `${where(name)} is not a regular file (${path})`, {
            code: 'NOT_A_VOLUME',
          })
        }
        return path
      },
      async blockdev(name) {
        return { driver: 'file', filename: await driver.filename(name) }
      },
      async exists(name) {
        return (await lstatOrNull(join(dir, name))) !== null
      },
      async remove(name) {
        const path = await driver.filename(name)
        try {
          await unlink(path)
          return true
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false
          throw e
        }
      },
      async list() {
        const entries = await readdir(dir, { withFileTypes: true })
        return entries
          .filter(e => e.isFile() && !e.name.startsWith('.') && !e.name.endsWith(TEMP_SUFFIX))
          .map(e => e.name)
          .sort()
      },
      async space() {
        const s = await statfs(dir)
        return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize }
      },
      record(name, filename) {
        return { kind: 'path', path: filename, label: `volume ${def.name}/${name}` }
      },
      allows: filename => roots.contains(filename),
    }
    return driver
  },
}
