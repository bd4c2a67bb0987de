// Race-free confinement of a path to the allowed roots. Checking a resolved path and then using it leaves a
// window in which a directory on the way can become a symlink out of the root. So the walk opens each directory
// by descriptor from the root down with O_NOFOLLOW (through /proc/self/fd/N/name, which is Linux's openat for a
// runtime without one), reads symlinks itself and resolves them under the same rules (`..` never climbs above the
// root, an absolute target must lie in a root), like openat2's RESOLVE_BENEATH. The caller gets the descriptor of
// the final entry's directory and its name, and works on `/proc/self/fd/<fd>/<name>`: a single lookup of a name
// that is not followed when it is a link.
import { constants } from 'node:fs'
import { type FileHandle, lstat, mkdir, open, readdir, readlink, rmdir, unlink } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { ErrorNames, VtError } from '../src/protocol/errors.ts'
import { outsideRoots, type Roots } from './roots.ts'

const MAX_LINKS = 40

/** A path's final entry: its directory, held open, and its name there ('' for a root itself). */
export interface Located {
  dir: FileHandle
  name: string
  /** The real path of the entry, for messages and records. */
  real: string
  /** The entry as a path that resolves through the open directory only. */
  at: string
  close(): Promise<void>
}

export interface LocateOptions {
  /** Follow a final symlink (reads, stat, list) or stop at it (writes and removes replace the entry). */
  followFinal: boolean
  /** Create missing directories on the way; `created` gets the first one created. */
  mkdirs?: { mode?: number; created?: (real: string) => Promise<void> | void }
}

/** `/proc/self/fd/<fd>/<name>`: resolved from the open directory, never from a path that may have changed. */
export function fdPath(handle: FileHandle, name = ''): string {
  return name ? `/proc/self/fd/${handle.fd}/${name}` : `/proc/self/fd/${handle.fd}`
}

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW

function notFound(path: string): VtError {
  return new VtError(ErrorNames.notFound, `no such file or directory: ${path}`, { code: 'ENOENT' })
}

/** The root holding an absolute, lexically normalized path, and the components below it. */
function split(roots: Roots, abs: string): { root: string; parts: string[] } | undefined {
  const root = roots.real
    .filter(r => abs === r || abs.startsWith(r.endsWith('/') ? r : `${r}/`))
    .sort((a, b) => b.length - a.length)[0]
  if (root === undefined) return undefined
  return { root, parts: abs.slice(root.length).split('/').filter(Boolean) }
}

/**
 * Finds `path` inside the roots without following any link out of them. `path` is first resolved as before
 * (roots.resolve: symlinks above the roots and `..`), then walked by descriptor from its root.
 */
export async function locate(roots: Roots, path: string, options: LocateOptions): Promise<Located> {
  // The entry itself when not following: its parent is resolved, its name kept.
  const start = options.followFinal ? await roots.resolve(path) : await roots.resolveEntry(path)
  const first = split(roots, start)
  if (!first) throw outsideRoots(path, start, roots.real)
  let stack: { handle: FileHandle; real: string }[] = []
  const closeAll = async () => {
    await Promise.all(stack.map(s => s.handle.close().catch(() => {})))
    stack = []
  }
  const enter = async (root: string) => {
    await closeAll()
    stack.push({ handle: await open(root, DIR_FLAGS), real: root })
  }
  try {
    await enter(first.root)
    const queue = [...first.parts]
    let links = 0
    let created = false
    while (queue.length > 0) {
      const c = queue.shift() as string
      if (c === '.') continue
      const top = stack[stack.length - 1]
      if (c === '..') {
        if (stack.length === 1) throw outsideRoots(path, resolve(top.real, '..'), roots.real)
        await stack.pop()?.handle.close()
        continue
      }
      const last = queue.length === 0
      const entry = fdPath(top.handle, c)
      let st: Awaited<ReturnType<typeof lstat>> | undefined
      try {
        st = await lstat(entry)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
      }
      if (last && (!options.followFinal || !st?.isSymbolicLink())) {
        return located(stack, top, c, closeAll)
      }
      if (!st) {
        if (!options.mkdirs) throw notFound(path)
        try {
          await mkdir(entry, { mode: options.mkdirs.mode })
          if (!created) {
            created = true
            await options.mkdirs.created?.(join(top.real, c))
          }
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
        }
        queue.unshift(c) // now look at what is there
        continue
      }
      if (st.isSymbolicLink()) {
        if (++links > MAX_LINKS) {
          throw new VtError(ErrorNames.badRequest, `${path}: too many levels of symbolic links`, { code: 'ELOOP' })
        }
        const target = await readlink(entry)
        if (target.startsWith('/')) {
          const abs = resolve(target)
          const next = split(roots, abs)
          if (!next) throw outsideRoots(path, abs, roots.real)
          await enter(next.root)
          queue.unshift(...next.parts)
        } else queue.unshift(...target.split('/').filter(Boolean))
        continue
      }
      if (!st.isDirectory()) {
        throw new VtError(ErrorNames.badRequest, `${path}: ${join(top.real, c)} is not a directory`, {
          code: 'ENOTDIR',
        })
      }
      let handle: FileHandle
      try {
        handle = await open(entry, DIR_FLAGS)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        // Swapped for a link or removed since the lstat: look again (bounded by the link count).
        if ((code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENOENT') && ++links <= MAX_LINKS) {
          queue.unshift(c)
          continue
        }
        throw e
      }
      stack.push({ handle, real: join(top.real, c) })
    }
    // The path is a root (or resolved to one).
    const top = stack[stack.length - 1]
    return located(stack, top, '', closeAll)
  } catch (e) {
    await closeAll()
    throw e
  }
}

function located(
  stack: { handle: FileHandle; real: string }[],
  top: { handle: FileHandle; real: string },
  name: string,
  closeAll: () => Promise<void>,
): Located {
  // Only the final directory stays open.
  for (const s of stack) if (s !== top) void s.handle.close().catch(() => {})
  stack.splice(0, stack.length, top)
  return {
    dir: top.handle,
    name,
    real: name ? join(top.real, name) : top.real,
    at: fdPath(top.handle, name),
    close: closeAll,
  }
}

/**
 * Removes `name` from an open directory without following links: a tree is walked by descriptor (Node's
 * recursive `rm` walks by path, so a subdirectory swapped for a link mid-walk would be followed).
 */
export async function removeAt(dir: FileHandle, name: string, recursive: boolean): Promise<void> {
  const path = fdPath(dir, name)
  const st = await lstat(path)
  if (!st.isDirectory()) return unlink(path)
  if (!recursive) {
    throw new VtError(ErrorNames.badRequest, `${name} is a directory: remove it with { recursive: true }`, {
      code: 'EISDIR',
    })
  }
  let sub: FileHandle
  try {
    sub = await open(path, DIR_FLAGS)
  } catch (e) {
    // Swapped for a link (or a file) since the lstat: remove that entry itself, never what it points to.
    if ((e as NodeJS.ErrnoException).code === 'ELOOP' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') {
      return unlink(path)
    }
    throw e
  }
  try {
    for (const child of await readdir(fdPath(sub))) await removeAt(sub, child, true)
  } finally {
    await sub.close()
  }
  await rmdir(path)
}

/**
 * Removes a path recorded by a session, without following a link swapped in since it was recorded. Records hold
 * real paths, so the directory opened by the recorded parent path must still be that path (the kernel's name for
 * the open directory); if a link now redirects it elsewhere, nothing is removed. Returns whether it removed.
 */
export async function removeRecorded(path: string): Promise<'removed' | 'gone' | 'redirected'> {
  const parentPath = dirname(path)
  let parent: FileHandle
  try {
    parent = await open(parentPath, constants.O_RDONLY | constants.O_DIRECTORY)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'gone'
    throw e
  }
  try {
    if ((await readlink(fdPath(parent))) !== parentPath) return 'redirected'
    await removeAt(parent, basename(path), true)
    return 'removed'
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone'
    throw e
  } finally {
    await parent.close()
  }
}
