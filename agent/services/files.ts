// files: stat, list, mkdir, remove, small reads and writes, and streamed transfers, all confined to the
// agent's allowed roots. Every path is walked by descriptor from its root (agent/confined.ts), so a directory
// swapped for a symlink out of the root mid-call is never followed. Writes go to a temporary file next to the
// target, in the same open directory, and are renamed into place: a reader never sees half a file, and a write
// through a final symlink replaces the link.
import { randomBytes } from 'node:crypto'
import { constants, write } from 'node:fs'
import { type FileHandle, lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { FileStat } from '../../src/protocol/files.ts'
import { STREAM_CHUNK_BYTES, STREAM_HEADER_BYTES, writeStreamHeader } from '../../src/protocol/wire.ts'
import { fdPath, type Located, locate, removeAt } from '../confined.ts'
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

// O_NONBLOCK: opening a FIFO must not wait for a writer (it would hold a thread of the pool forever).
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK

/** Opens a located entry for reading; a final symlink swapped in since the walk is not followed. */
async function openForRead(loc: Located, path: string): Promise<FileHandle> {
  if (!loc.name) throw new VtError(ErrorNames.badRequest, `${path} is not a regular file`, { code: 'NOT_REGULAR' })
  try {
    return await open(loc.at, READ_FLAGS)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw notFound(path)
    if (code === 'ELOOP') throw new VtError(ErrorNames.badRequest, `${path} changed while opening it`, { code })
    throw e
  }
}

/** Reads at most `max` bytes (counted as read, not as stat claims); waits for a FIFO's writer up to 10 s. */
async function readBounded(handle: FileHandle, path: string, max: number, signal: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  const deadline = Date.now() + 10_000
  for (;;) {
    const buf = Buffer.allocUnsafe(Math.min(64 * 1024, max + 1 - total))
    let n: number
    try {
      n = (await handle.read(buf, 0, buf.length, null)).bytesRead
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || signal.aborted) throw e
      if (Date.now() > deadline) {
        throw new VtError(ErrorNames.timeout, `${path}: no data within 10 s`, { code: 'TIMEOUT' })
      }
      await new Promise(r => setTimeout(r, 20))
      continue
    }
    if (n === 0) return Buffer.concat(chunks, total)
    total += n
    if (total > max) {
      throw new VtError(ErrorNames.badRequest, `${path} has more than maxBytes ${max} bytes: use get()`, {
        code: 'TOO_LARGE',
      })
    }
    chunks.push(buf.subarray(0, n))
  }
}

async function lstatOrNull(path: string): Promise<import('node:fs').Stats | null> {
  try {
    return await lstat(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw e
  }
}

interface OpenWrite {
  /** The target's directory, open until commit or abort. */
  loc: Located
  handle: FileHandle
  tmpName: string
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

    const locateFor = (path: string, followFinal: boolean, mkdirs?: { keep: boolean; mode?: number }) =>
      locate(roots, path, {
        followFinal,
        mkdirs: mkdirs && {
          mode: mkdirs.mode,
          created: async real => {
            if (!mkdirs.keep) await session.track({ kind: 'path', path: real, label: 'mkdir' })
          },
        },
      })

    /** The entry to write: its directory held open; a final symlink may be replaced but must point inside. */
    const locateTarget = async (path: string, options: { mkdirs?: boolean; keep?: boolean }) => {
      const loc = await locateFor(path, false, options.mkdirs ? { keep: options.keep ?? false } : undefined)
      try {
        if ((await lstatOrNull(loc.at))?.isSymbolicLink()) await (await locateFor(path, true)).close()
        return loc
      } catch (e) {
        await loc.close()
        throw e
      }
    }

    const startWrite = async (
      path: string,
      options: { mode?: number; mkdirs?: boolean; keep?: boolean },
    ): Promise<OpenWrite> => {
      const loc = await locateTarget(path, options)
      try {
        const existed = (await lstatOrNull(loc.at)) !== null
        const tmpName = `.${loc.name}.vt-${randomBytes(6).toString('hex')}`
        // Recorded by its real path before it exists: reaped if the agent dies mid-write.
        const tmpRecord = await session.track({ kind: 'path', path: join(dirname(loc.real), tmpName), label: 'upload' })
        const handle = await open(
          fdPath(loc.dir, tmpName),
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o644,
        )
        return {
          loc,
          handle,
          tmpName,
          mode: options.mode,
          keep: options.keep ?? false,
          existed,
          tmpRecord,
          size: 0,
          unsubscribe: () => {},
          chain: Promise.resolve(),
        }
      } catch (e) {
        await loc.close()
        throw e
      }
    }

    const dropWrite = async (w: OpenWrite) => {
      await w.handle.close().catch(() => {})
      await rm(fdPath(w.loc.dir, w.tmpName), { force: true })
      await session.untrack(w.tmpRecord)
      await w.loc.close()
    }

    const finish = async (w: OpenWrite): Promise<FileStat> => {
      try {
        if (w.mode !== undefined) await w.handle.chmod(w.mode)
        await w.handle.close()
        // Both names resolve through the same open directory: the rename cannot land elsewhere.
        await rename(fdPath(w.loc.dir, w.tmpName), w.loc.at)
        await session.untrack(w.tmpRecord)
        if (!w.keep && !w.existed) await session.track({ kind: 'path', path: w.loc.real, label: 'file' })
        return toStat(w.loc.real, await lstat(w.loc.at))
      } catch (e) {
        await dropWrite(w)
        throw e
      } finally {
        await w.loc.close()
      }
    }

    session.onClose(async () => {
      for (const w of writes.values()) {
        w.unsubscribe()
        await w.handle.close().catch(() => {})
        await w.loc.close()
      }
      writes.clear()
    })

    return {
      async stat(path) {
        let loc: Located
        try {
          loc = await locateFor(path, true)
        } catch (e) {
          if ((e as VtError).code === 'ENOENT') return null
          throw e
        }
        try {
          const st = await lstatOrNull(loc.at)
          return st && toStat(path, st)
        } finally {
          await loc.close()
        }
      },

      async list(path) {
        const loc = await locateFor(path, true)
        let dir: FileHandle
        try {
          // A root is the open directory itself (its /proc/self/fd link must not meet O_NOFOLLOW).
          dir = loc.name
            ? await open(loc.at, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW)
            : loc.dir
        } catch (e) {
          await loc.close()
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(path)
          throw e
        }
        try {
          const out: FileStat[] = []
          for (const name of (await readdir(fdPath(dir))).sort()) {
            const st = await lstatOrNull(fdPath(dir, name)) // null: removed while listing
            if (st) out.push(toStat(`${path.replace(/\/+$/, '')}/${name}`, st))
          }
          return out
        } finally {
          if (dir !== loc.dir) await dir.close()
          await loc.close()
        }
      },

      async mkdir(path, options) {
        const loc = await locateFor(path, true, { keep: options?.keep ?? false, mode: options?.mode })
        try {
          if (!loc.name) return // a root
          try {
            await mkdir(loc.at, { mode: options?.mode })
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'EEXIST' && (await lstat(loc.at)).isDirectory()) return
            throw e
          }
          if (!options?.keep) await session.track({ kind: 'path', path: loc.real, label: 'mkdir' })
        } finally {
          await loc.close()
        }
      },

      async remove(path, options) {
        const loc = await locateFor(path, false).catch(e => {
          if ((e as VtError).code === 'ENOENT') return undefined
          throw e
        })
        if (!loc) return false
        try {
          if (!loc.name || roots.isRoot(loc.real)) {
            throw new VtError(ErrorNames.badRequest, `refusing to remove the allowed root ${path} itself`, {
              code: 'BAD_REQUEST',
            })
          }
          if (!(await lstatOrNull(loc.at))) return false
          await removeAt(loc.dir, loc.name, options?.recursive ?? false)
          return true
        } finally {
          await loc.close()
        }
      },

      async write(path, data, options) {
        const w = await startWrite(path, options ?? {})
        try {
          await w.handle.writeFile(typeof data === 'string' ? data : Buffer.from(data))
        } catch (e) {
          await dropWrite(w)
          throw e
        }
        return finish(w)
      },

      async readSmall(path, options) {
        const max = options?.maxBytes ?? 16 * 1024 * 1024
        const loc = await locateFor(path, true)
        try {
          const handle = await openForRead(loc, path)
          try {
            const s = await handle.stat()
            if (!s.isFile() && !options?.special) {
              throw new VtError(
                ErrorNames.badRequest,
                `${path} is not a regular file (${kindOf(s) === 'directory' ? 'a directory' : 'a device, FIFO or socket'}): pass { special: true } to read it anyway`,
                { code: 'NOT_REGULAR' },
              )
            }
            if (s.isFile() && s.size > max) {
              throw new VtError(
                ErrorNames.badRequest,
                `${path} has ${s.size} bytes, more than maxBytes ${max}: use get()`,
                {
                  code: 'TOO_LARGE',
                },
              )
            }
            return await readBounded(handle, path, max, session.signal)
          } finally {
            await handle.close()
          }
        } finally {
          await loc.close()
        }
      },

      async openWrite(path, options) {
        if (writes.has(options.stream)) {
          throw new VtError(ErrorNames.badRequest, `stream ${options.stream} is already open`, { code: 'BAD_REQUEST' })
        }
        const w = await startWrite(path, options)
        // Async writes in order; the server stops reading the socket while many are pending (backpressure).
        w.unsubscribe = agent.onStream(session.id, options.stream, chunk => {
          w.chain = w.chain.then(async () => {
            if (w.error) return
            try {
              let off = 0
              while (off < chunk.length)
                off += (await writeAsync(w.handle.fd, chunk, off, chunk.length - off)).bytesWritten
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
        if (w.error) {
          await dropWrite(w)
          throw w.error
        }
        return finish(w)
      },

      async abort(stream) {
        const w = writes.get(stream)
        if (!w) return
        writes.delete(stream)
        w.unsubscribe()
        await w.chain
        await dropWrite(w)
      },

      async read(path, options) {
        const loc = await locateFor(path, true)
        try {
          const handle = await openForRead(loc, path)
          try {
            const s = await handle.stat()
            if (!s.isFile())
              throw new VtError(ErrorNames.badRequest, `${path} is not a regular file`, { code: 'NOT_REGULAR' })
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
        } finally {
          await loc.close()
        }
      },
    }
  }
})
