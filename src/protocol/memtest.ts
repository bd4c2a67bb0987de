// The memtest guest's shared vocabulary: the RAM range it rewrites, and the report of a dump check. The host
// side (agent/memtest/) builds the boot disk for a range and checks dumps; the controller picks the range from a
// VM's memory size and turns reports into errors.

export const PAGE_SIZE = 4096
const MiB = 1024 * 1024

/** The guest-physical RAM range the memtest loop touches: [start, end), both page aligned. */
export interface MemtestRange {
  start: number
  end: number
}

/**
 * The range used for a guest with `memoryBytes` of RAM: from 1 MiB (above the BIOS area and the boot sector)
 * to 16 MiB below the top of RAM (kept clear of q35's TSEG and firmware tables), and below 2 GiB (low RAM on
 * both pc and q35).
 */
export function memtestRange(memoryBytes: number): MemtestRange {
  if (!Number.isFinite(memoryBytes) || memoryBytes < 32 * MiB) {
    throw new Error(`memtest needs a guest with at least 32 MiB of memory, got ${memoryBytes} bytes`)
  }
  return { start: MiB, end: Math.min(memoryBytes - 16 * MiB, 2048 * MiB) }
}

export interface BadPage {
  /** Index of the page in the range. */
  page: number
  /** Its guest-physical address. */
  address: number
  what: 'counter' | 'tag' | 'size' | 'passes'
  expected: number
  actual: number
}

export interface IntegrityReport {
  ok: boolean
  /** Pages checked. */
  pages: number
  /** The first page's counter (passes completed mod 256, plus the running one). */
  counter: number
  /** Passes the guest finished since it booted (bytes 8..11 of the first page). */
  passes: number
  /** First page whose counter is one less than the first page's, or undefined when all agree. */
  boundary?: number
  /** The first page that breaks the rule, when not ok. */
  bad?: BadPage
}

/** One line saying what is wrong (or right) with a dump. */
export function describeReport(r: IntegrityReport): string {
  const hex = (n: number) => `0x${n.toString(16)}`
  if (r.ok) {
    const where = r.boundary === undefined ? 'no boundary' : `boundary at page ${r.boundary}`
    return `memory intact: ${r.pages} pages, ${r.passes} passes, counter ${r.counter}, ${where}`
  }
  const b = r.bad as BadPage
  if (b.what === 'passes') {
    return `first page counter ${b.actual} disagrees with the guest's count of finished passes (${r.passes}): expected ${b.expected}`
  }
  if (b.what === 'size') return `memory dump holds ${b.actual} pages, expected ${b.expected}`
  if (b.what === 'tag') {
    const field = b.expected === 0 ? 'a non-zero word at byte 8' : 'tag'
    return `page ${b.page} at ${hex(b.address)} carries ${field} ${hex(b.actual)} (expected ${hex(b.expected)}): page misplaced or guest not initialised`
  }
  const after = r.boundary === undefined ? 'before any boundary' : `after the boundary at page ${r.boundary}`
  return `page ${b.page} at ${hex(b.address)} has counter ${b.actual}, expected ${b.expected} (${after}; first page ${r.counter})`
}
