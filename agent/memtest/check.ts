// Checks a RAM dump of the memtest guest (agent/memtest/bootblock.S). Every 4 KiB page of the range
// holds a counter in byte 0 (bytes 1..3 zero) and its own physical address in bytes 4..7. The guest bumps the
// counters low to high, pass after pass, then counts the pass in bytes 8..11 of the first page. So the guest,
// stopped at any instant, has finished P passes and bumped the first k pages of the next one (0 <= k <= pages):
// the first k counters are P+1, the rest P (mod 256). A first counter equal to P means k = 0 (no page may lag);
// P+1 means mid-pass (from one boundary on, counters are one less) or a pass bumped but not yet counted.
// Anything else means a page was lost, duplicated, misplaced or went stale during migration.
//
// The page named as bad is the first one at which the dump stops being the prefix of any snapshot the guest can
// leave: a decremented page 1 of [5,4,5,4] might as well be page 2 of [5,4,4,4], so no checker can name the
// corrupted page in every case, but this one is well defined and checkable by brute force (memtest.test.ts).
//
// Pure Node, no vt imports: the agent runs it next to the dump so hundreds of MiB never cross the wire.
import { open } from 'node:fs/promises'
import type { BadPage, IntegrityReport } from '../../src/protocol/memtest.ts'

const PAGE = 4096

/** Incremental checker, fed page-aligned chunks of the dump in order. */
export class IntegrityChecker {
  private page = 0
  private counter = -1
  private passes = 0
  private midPass = false
  private boundary: number | undefined
  private bad: BadPage | undefined

  constructor(private readonly start: number) {
    if (!Number.isInteger(start) || start % PAGE !== 0) throw new Error(`dump start ${start} must be page aligned`)
  }

  feed(chunk: Uint8Array): void {
    if (chunk.length % PAGE !== 0) throw new Error(`dump chunk of ${chunk.length} bytes is not a whole number of pages`)
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    for (let off = 0; off < chunk.length && !this.bad; off += PAGE, this.page++) {
      const address = this.start + this.page * PAGE
      const word = view.getUint32(off, true)
      const tag = view.getUint32(off + 4, true)
      if (tag !== address) {
        this.fail('tag', address, tag)
        break
      }
      if (this.page > 0 && view.getUint32(off + 8, true) !== 0) {
        this.fail('tag', 0, view.getUint32(off + 8, true))
        break
      }
      if (this.counter < 0) {
        // Bytes 1..3 of the counter word stay zero; anything else is not a counter.
        this.passes = view.getUint32(off + 8, true)
        if (word > 0xff) {
          this.fail('counter', 0, word)
          break
        }
        this.counter = word
        this.midPass = word === ((this.passes + 1) & 0xff)
        if (!this.midPass && word !== (this.passes & 0xff)) {
          this.fail('passes', (this.passes + 1) & 0xff, word)
          break
        }
        continue
      }
      const expected = this.boundary === undefined ? this.counter : (this.counter + 255) & 0xff
      if (word === expected) continue
      // Only a guest that started the next pass (first counter one ahead of the finished passes) has a boundary.
      if (this.midPass && this.boundary === undefined && word === ((this.counter + 255) & 0xff)) {
        this.boundary = this.page
        continue
      }
      this.fail('counter', expected, word)
    }
  }

  private fail(what: BadPage['what'], expected: number, actual: number): void {
    this.bad = { page: this.page, address: this.start + this.page * PAGE, what, expected, actual }
  }

  /** The verdict; `expectedPages` catches a short dump. */
  finish(expectedPages?: number): IntegrityReport {
    if (!this.bad && expectedPages !== undefined && this.page !== expectedPages) {
      this.bad = {
        page: this.page,
        address: this.start + this.page * PAGE,
        what: 'size',
        expected: expectedPages,
        actual: this.page,
      }
    }
    if (!this.bad && this.page === 0) {
      this.bad = { page: 0, address: this.start, what: 'size', expected: 1, actual: 0 }
    }
    return {
      ok: !this.bad,
      pages: this.page,
      counter: Math.max(this.counter, 0),
      passes: this.passes,
      boundary: this.boundary,
      bad: this.bad,
    }
  }
}

export function checkMemoryDump(dump: Uint8Array, start: number): IntegrityReport {
  const checker = new IntegrityChecker(start)
  checker.feed(dump.subarray(0, dump.length - (dump.length % PAGE)))
  return checker.finish(Math.floor(dump.length / PAGE))
}

/** Checks a dump file without loading it whole. */
export async function checkMemoryDumpFile(path: string, start: number, size: number): Promise<IntegrityReport> {
  const checker = new IntegrityChecker(start)
  const file = await open(path, 'r')
  try {
    const buf = Buffer.alloc(4 * 1024 * 1024)
    let read = 0
    while (read < size) {
      const { bytesRead } = await file.read(buf, 0, Math.min(buf.length, size - read), read)
      if (bytesRead === 0) break
      const whole = bytesRead - (bytesRead % PAGE)
      checker.feed(buf.subarray(0, whole))
      read += whole
      if (whole !== bytesRead) break
    }
    return checker.finish(size / PAGE)
  } finally {
    await file.close()
  }
}
