// The memtest guest as a disk image: the committed boot sector with its parameter block patched to a RAM
// range, written as a raw image into vt's cache dir (content-addressed, so concurrent builders agree).
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type MemtestRange, PAGE_SIZE } from '../../src/protocol/memtest.ts'
import { cacheDir } from '../image/cache.ts'
import { bootblock } from './bootblock.ts'

const MiB = 1024 * 1024
const PARAMS_OFFSET = 0x1f0
const MAGIC = 'VTMT'

function checkRange(range: MemtestRange): void {
  const { start, end } = range
  const ok =
    Number.isInteger(start) &&
    Number.isInteger(end) &&
    start % PAGE_SIZE === 0 &&
    end % PAGE_SIZE === 0 &&
    start >= MiB &&
    end > start &&
    end <= 0xffff_f000
  if (!ok) {
    throw new Error(
      `memtest range [${start}, ${end}) must be page aligned, start at or above 1 MiB and end above start, below 4 GiB`,
    )
  }
}

/** The boot sector with the range written into its parameter block. */
export function memtestBootSector(range: MemtestRange): Buffer {
  checkRange(range)
  const sector = Buffer.from(bootblock)
  if (sector.toString('latin1', PARAMS_OFFSET, PARAMS_OFFSET + 4) !== MAGIC) {
    throw new Error('memtest boot sector has no VTMT parameter block: re-run agent/memtest/assemble.ts')
  }
  sector.writeUInt32LE(range.start, PARAMS_OFFSET + 4)
  sector.writeUInt32LE(range.end, PARAMS_OFFSET + 8)
  return sector
}

/** vt's cache dir (shared with the image cache, which the agents accept disk paths from). */
export function vtCacheDir(): string {
  return cacheDir()
}

/**
 * Writes (once) the raw disk image of the memtest guest for this range and returns its path. The image is the
 * sector padded to 1 MiB so that every disk tool treats it as an ordinary raw disk.
 */
export async function buildMemtestImage(range: MemtestRange, root = vtCacheDir()): Promise<string> {
  const sector = memtestBootSector(range)
  const image = Buffer.alloc(MiB)
  sector.copy(image)
  const hash = createHash('sha256').update(image).digest('hex').slice(0, 16)
  const dir = join(root, 'memtest')
  const path = join(dir, `memtest-${hash}.raw`)
  // The name is a hash of the content: a file that does not hold exactly that (truncated, zeroed) is rewritten.
  try {
    if ((await readFile(path)).equals(image)) return path
  } catch {}
  await mkdir(dir, { recursive: true })
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, image)
  await rename(tmp, path)
  return path
}

/**
 * Checks every memtest image in the cache against its name (a hash of its content) and removes the broken
 * ones, or with `force` all of them: each is rewritten from the boot sector when next used. Returns what it
 * removed and why, for `vt image build` to say.
 */
export function repairMemtestImages(opts: { force?: boolean; root?: string } = {}): string[] {
  const dir = join(opts.root ?? vtCacheDir(), 'memtest')
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  const removed: string[] = []
  for (const name of names) {
    const m = /^memtest-([0-9a-f]{16})\.raw$/.exec(name)
    const path = join(dir, name)
    if (!m) {
      // A writer's temporary file whose process is gone, or anything else that is not ours to keep.
      const pid = Number(/\.(\d+)\.tmp$/.exec(name)?.[1])
      if (pid && !alive(pid)) {
        rmSync(path, { force: true })
        removed.push(`${name}: left by a writer that died`)
      }
      continue
    }
    let why: string | undefined
    if (opts.force) why = 'rebuilt on next use (--force)'
    else {
      try {
        const data = readFileSync(path)
        if (data.length !== MiB) why = `${data.length} bytes instead of ${MiB}`
        else if (createHash('sha256').update(data).digest('hex').slice(0, 16) !== m[1])
          why = 'its content does not match its name (corrupted)'
      } catch (e) {
        why = `unreadable (${(e as NodeJS.ErrnoException).code})`
      }
    }
    if (why) {
      rmSync(path, { force: true })
      removed.push(`${name}: ${why}`)
    }
  }
  return removed
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
