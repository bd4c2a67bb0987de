// files: stat, list, mkdir, remove, small reads and writes, and streamed transfers, all confined to the
// agent's allowed roots (agent/roots.ts). Writes go to a temporary file next to the target and are renamed
// into place, so a reader never sees half a file and a write through a final symlink replaces the link.
import { randomBytes } from 'node:crypto'
import { closeSync, constants, openSync, write } from 'node:fs'
import { chmod, lstat, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { FileStat } from '../../src/protocol/files.ts'
import { STREAM_CHUNK_BYTES, STREAM_HEADER_BYTES, writeStreamHeader } from '../../src/protocol/wire.ts'
import { Roots } from '../roots.ts'
import { implement } from '../service.ts'

function kindOf(s: import('node:fs').Stats): FileStat['type'] {
  if (s.isFile()) return 'file'
  if (s.isDirectory()) return 'directory'
  if (s.isSymbolicLink()) return 'symlink'
  return 'other'
}

function toStat(path: string, s: import('node:fs').Stats): FileStat {
  return { path, type: kindOf(s), size: s.size, mode: s.mode & 0o7777, mtimeMs: s.mtimeMs }
}

function notFound(path: string): VtError {
  return new VtError(ErrorNames.notFound, `no such file or directory: ${path}`, { code: 'ENOENT' })
}

/** Opens a confined, already resolved path for reading; never follows a final symlink swapped in since. */
async function openForRead(real: string, path: string): Promise<import('node:fs/promises').FileHandle> {
  try {
    return await open(real, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(path)
    throw e
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch {
    return false
  }
}

interface OpenWrite {
  fd: number
  tmp: string
  target: string
  mode?: number
  keep: boolean
  existed: boolean
  tmpRecord: string
  error?: Error
  size: number
  unsubscribe: () => void
  /** The writes so far, in order. */
  chain: Promise<void>
}

const writeAsync = promisify(write)

export const filesService = implement('files', agent => {
  const roots = new Roots(agent.roots)

  return session => {
    const writes = new Map<number, OpenWrite>()

    /** Creates missing parents (inside the roots); records the topmost one created unless `keep`. */
    const makeParents = async (dir: string, keep: boolean) => {
      const created = await mkdir(dir, { recursive: true })
      if (created && !keep) await session.track({ kind: 'path', path: created, label: 'mkdir' })
    }

    const tempFor = (target: string) =>
      join(dirname(target), `.${basename(target)}.vt-${randomBytes(6).toString('hex')}`)

    const finish = async (w: OpenWrite): Promise<FileStat> => {
      if (w.mode !== undefined) await chmod(w.tmp, w.mode)
      await rename(w.tmp, w.target)
      await session.untrack(w.tmpRecord)
      if (!w.keep && !w.existed) await session.track({ kind: 'path', path: w.target, label: 'file' })
      return toStat(w.target, await stat(w.target))
    }

    session.onClose(() => {
      for (const w of writes.values()) {
        w.unsubscribe()
        try {
          closeSync(w.fd)
        } catch {}
      }
      writes.clear()
    })

    return {
      async stat(path) {
        const real = await roots.resolve(path)
        try {
          return toStat(path, await stat(real))
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
          throw e
        }
      },

      async list(path) {
        const real = await roots.resolve(path)
        let names: string[]
        try {
          names = await readdir(real)
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(path)
          throw e
        }
        const out: FileStat[] = []
        for (const name of names.sort()) {
          try {
            out.push(toStat(join(path, name), await lstat(join(real, name))))
          } catch {
            // removed while listing
          }
        }
        return out
      },

      async mkdir(path, options) {
        const real = await roots.resolve(path)
        const created = await mkdir(real, { recursive: true, mode: options?.mode })
        if (created && !options?.keep) await session.track({ kind: 'path', path: created, label: 'mkdir' })
      },

      async remove(path, options) {
        const entry = await roots.resolveEntry(path)
        if (roots.isRoot(entry)) {
          throw new VtError(ErrorNames.badRequest, `refusing to remove the allowed root ${path} itself`, {
            code: 'BAD_REQUEST',
          })
        }
        if (!(await exists(entry))) return false
        await rm(entry, { recursive: options?.recursive ?? false, force: true })
        return true
      },

      async write(path, data, options) {
        const target = await roots.resolveEntry(path)
        await roots.resolve(path) // a final symlink must not point outside either
        if (options?.mkdirs) await makeParents(dirname(target), options.keep ?? false)
        const existed = await exists(target)
        const tmp = tempFor(target)
        const tmpRecord = await session.track({ kind: 'path', path: tmp, label: 'upload' })
        const handle = await open(
          tmp,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o644,
        )
        try {
          await handle.writeFile(typeof data === 'string' ? data : Buffer.from(data))
        } finally {
          await handle.close()
        }
        return finish({
          fd: -1,
          tmp,
          target,
          mode: options?.mode,
          keep: options?.keep ?? false,
          existed,
          tmpRecord,
          size: 0,
          unsubscribe() {},
          chain: Promise.resolve(),
        })
      },

      async readSmall(path, options) {
        const real = await roots.resolve(path)
        const max = options?.maxBytes ?? 16 * 1024 * 1024
        const handle = await openForRead(real, path)
        try {
          const s = await handle.stat()
          if (s.size > max) {
            throw new VtError(
              ErrorNames.badRequest,
              `${path} has ${s.size} bytes, more than maxBytes ${max}: use get()`,
              {
                code: 'TOO_LARGE',
              },
            )
          }
          return await handle.readFile()
        } finally {
          await handle.close()
        }
      },

      async openWrite(path, options) {
        if (writes.has(options.stream)) {
          throw new VtError(ErrorNames.badRequest, `stream ${options.stream} is already open`, { code: 'BAD_REQUEST' })
        }
        const target = await roots.resolveEntry(path)
        await roots.resolve(path)
        if (options.mkdirs) await makeParents(dirname(target), options.keep ?? false)
        const existed = await exists(target)
        const tmp = tempFor(target)
        const tmpRecord = await session.track({ kind: 'path', path: tmp, label: 'upload' })
        const fd = openSync(
          tmp,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o644,
        )
        const w: OpenWrite = {
          fd,
          tmp,
          target,
          mode: options.mode,
          keep: options.keep ?? false,
          existed,
          tmpRecord,
          size: 0,
          unsubscribe: () => {},
          chain: Promise.resolve(),
        }
        // Async writes in order; the server stops reading the socket while many are pending (backpressure).
        w.unsubscribe = agent.onStream(session.id, options.stream, chunk => {
          w.chain = w.chain.then(async () => {
            if (w.error) return
            try {
              let off = 0
              while (off < chunk.length) off += (await writeAsync(fd, chunk, off, chunk.length - off)).bytesWritten
              w.size += chunk.length
            } catch (e) {
              w.error = e as Error
            }
          })
          return w.chain
        })
        writes.set(options.stream, w)
      },

      async commit(stream) {
        const w = writes.get(stream)
        if (!w) throw new VtError(ErrorNames.badRequest, `stream ${stream} is not open`, { code: 'BAD_REQUEST' })
        writes.delete(stream)
        w.unsubscribe()
        await w.chain
        try {
          if (w.error) throw w.error
        } catch (e) {
          closeSync(w.fd)
          await rm(w.tmp, { force: true })
          await session.untrack(w.tmpRecord)
          throw e
        }
        closeSync(w.fd)
        return finish(w)
      },

      async abort(stream) {
        const w = writes.get(stream)
        if (!w) return
        writes.delete(stream)
        w.unsubscribe()
        await w.chain
        closeSync(w.fd)
        await rm(w.tmp, { force: true })
        await session.untrack(w.tmpRecord)
      },

      async read(path, options) {
        const real = await roots.resolve(path)
        const handle = await openForRead(real, path)
        try {
          const s = await handle.stat()
          if (!s.isFile())
            throw new VtError(ErrorNames.badRequest, `${path} is not a regular file`, { code: 'BAD_REQUEST' })
          let size = 0
          // Read ahead while earlier chunks are being sent; each buffer has room for the stream header.
          const pending: Promise<void>[] = []
          for (;;) {
            const frame = Buffer.allocUnsafe(STREAM_HEADER_BYTES + STREAM_CHUNK_BYTES)
            const { bytesRead } = await handle.read(frame, STREAM_HEADER_BYTES, STREAM_CHUNK_BYTES, size)
            if (bytesRead === 0) break
            size += bytesRead
            writeStreamHeader(frame, options.stream)
            pending.push(agent.sendStreamFrame(session.id, frame.subarray(0, STREAM_HEADER_BYTES + bytesRead)))
            if (pending.length >= 4) await pending.shift()
          }
          await Promise.all(pending)
          return { size }
        } finally {
          await handle.close()
        }
      },
    }
  }
})
