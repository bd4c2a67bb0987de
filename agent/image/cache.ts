// The image cache: $VT_CACHE_DIR (default $XDG_CACHE_HOME/vt or ~/.cache/vt). Entries are directories named
// by a hash of their inputs, written to a temporary directory and renamed into place, so a reader never sees
// a half-built entry; a lock file keeps two builders of the same key from doing the work twice.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

export function cacheDir(): string {
  if (process.env.VT_CACHE_DIR) return process.env.VT_CACHE_DIR
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache')
  return join(base, 'vt')
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Runs `fn` holding an exclusive lock file. A lock whose owner process is gone (or older than `staleMs`) is
 * taken over. Waits up to `timeoutMs` for a live owner, calling `onWait` once.
 */
export async function withLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  opts: { timeoutMs?: number; staleMs?: number; onWait?: (owner: string) => void } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000)
  const staleMs = opts.staleMs ?? 900_000
  let warned = false
  for (;;) {
    try {
      const fd = openSync(lockPath, 'wx')
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      let owner = ''
      try {
        owner = readFileSync(lockPath, 'utf8').trim()
      } catch {
        continue // released between open and read
      }
      const pid = Number(owner)
      let age = 0
      try {
        age = Date.now() - statSync(lockPath).mtimeMs
      } catch {}
      if (!pid || !alive(pid) || age > staleMs) {
        rmSync(lockPath, { force: true })
        continue
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${lockPath} held by pid ${pid}`)
      if (!warned) opts.onWait?.(`pid ${pid}`)
      warned = true
      await delay(200)
    }
  }
  try {
    return await fn()
  } finally {
    rmSync(lockPath, { force: true })
  }
}

export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true })
  return path
}

/**
 * Puts the built `tmp` where `dir` is. An existing `dir` (a broken entry, or any entry under --force) is first
 * moved aside, so the rename cannot fail on a non-empty target and a reader never sees half of each.
 */
export function replaceDir(tmp: string, dir: string, aside: string): void {
  rmSync(aside, { recursive: true, force: true })
  if (existsSync(dir)) renameSync(dir, aside)
  try {
    renameSync(tmp, dir)
  } finally {
    rmSync(aside, { recursive: true, force: true })
  }
}

/** Temporary build (or set-aside) dirs of builders that were killed mid-build (their pid is gone). */
export function removeDeadBuilds(root: string, image: string): void {
  for (const name of readdirSync(root)) {
    const m = /^\.(?:tmp|old)-([a-z]+)-[0-9a-f]+-(\d+)$/.exec(name)
    const pid = m?.[1] === image ? Number(m[2]) : 0
    if (!pid || pid === process.pid) continue
    try {
      process.kill(pid, 0)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(root, name), { recursive: true, force: true })
    }
  }
}

export { existsSync }
