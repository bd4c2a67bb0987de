// The memtest guest as a disk image: the committed boot sector with its parameter block patched to a RAM
// range, written as a raw image into vt's cache dir (content-addressed, so concurrent builders agree).
import { createHash } from 'node:crypto'
import { mkdir, rename, stat, writeFile } from 'node:fs/promises'
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
  try {
    if ((await stat(path)).size === image.length) return path
  } catch {}
  await mkdir(dir, { recursive: true })
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, image)
  await rename(tmp, path)
  return path
}
