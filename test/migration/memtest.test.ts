// The memory-integrity guest and its checker: the committed boot sector matches its source, the checker
// accepts exactly the snapshots the guest can produce, and a real guest migrated between two QEMU processes
// over loopback keeps its memory intact while a corrupted dump is caught.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { open } from 'node:fs/promises'
import { test } from 'node:test'
import fc from 'fast-check'
import { assembleBootblock } from '../../agent/memtest/assemble.ts'
import { bootblock } from '../../agent/memtest/bootblock.ts'
import { checkMemoryDump } from '../../agent/memtest/check.ts'
import { memtestBootSector } from '../../agent/memtest/image.ts'
import { MemoryIntegrityError, verifyMemoryIntegrityWith } from '../../src/migration/verify.ts'
import { describeReport, memtestRange } from '../../src/protocol/memtest.ts'
import { seeded } from '../helpers/property.ts'
import { requires } from '../helpers/requirements.ts'
import { freeLoopbackPort, startLocalMemtest } from './helpers/localQemu.ts'

const PAGE = 4096
const MiB = 1024 * 1024

function hasBinutils(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v as && command -v ld'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

test('the committed boot sector is what bootblock.S assembles to', async t => {
  if (!hasBinutils()) {
    if (process.env.CI) throw new Error('needs binutils (as, ld): CI must provide it')
    t.skip('needs binutils (as, ld)')
    return
  }
  const fresh = await assembleBootblock()
  assert.deepEqual(
    [...fresh],
    [...bootblock],
    'run `npx tsx src/migration/memtest/assemble.ts` after editing bootblock.S',
  )
})

test('the boot sector carries the range in its parameter block', () => {
  const sector = memtestBootSector({ start: MiB, end: 200 * MiB })
  assert.equal(sector.length, 512)
  assert.equal(sector.toString('latin1', 0x1f0, 0x1f4), 'VTMT')
  assert.equal(sector.readUInt32LE(0x1f4), MiB)
  assert.equal(sector.readUInt32LE(0x1f8), 200 * MiB)
  assert.deepEqual([sector[510], sector[511]], [0x55, 0xaa])
  assert.deepEqual(memtestRange(512 * MiB), { start: MiB, end: 496 * MiB })
  assert.throws(() => memtestBootSector({ start: MiB + 1, end: 2 * MiB }), /page aligned/)
  assert.throws(() => memtestBootSector({ start: 0, end: 2 * MiB }), /1 MiB/)
  assert.throws(() => memtestRange(16 * MiB), /at least 32 MiB/)
})

/**
 * The dump the guest leaves when stopped after `passes` finished passes with the first `k` pages of the next one
 * bumped (0 <= k <= pages): counters (passes+1) & 0xff before k, passes & 0xff from k on; the pass count in page 0.
 */
function guestDump(start: number, pages: number, passes: number, k: number): Buffer {
  const buf = Buffer.alloc(pages * PAGE, 0xcc)
  for (let i = 0; i < pages; i++) {
    buf.writeUInt32LE((i < k ? passes + 1 : passes) & 0xff, i * PAGE)
    buf.writeUInt32LE(start + i * PAGE, i * PAGE + 4)
    buf.writeUInt32LE(0, i * PAGE + 8)
  }
  buf.writeUInt32LE(passes >>> 0, 8)
  return buf
}

/** First page whose checked bytes (0..11) differ between two dumps, or the page count when none does. */
function firstDiff(a: Buffer, b: Buffer): number {
  const pages = a.length / PAGE
  for (let i = 0; i < pages; i++) {
    if (!a.subarray(i * PAGE, i * PAGE + 12).equals(b.subarray(i * PAGE, i * PAGE + 12))) return i
  }
  return pages
}

/**
 * The oracle, by brute force: the first page at which `dump` stops being the prefix of any dump the guest can
 * leave (its pass count, read from page 0, fixes every candidate's page 0; the candidates differ by k), or the
 * page count when it is one of them. This is what the checker must name.
 */
function oracleBadPage(dump: Buffer, start: number): number {
  const pages = dump.length / PAGE
  const passes = dump.readUInt32LE(8)
  let best = 0
  for (let k = 0; k <= pages; k++) best = Math.max(best, firstDiff(dump, guestDump(start, pages, passes, k)))
  return best
}

test('checker: every snapshot the guest can leave passes', t => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 64 }), fc.nat({ max: 0xffffffff }), fc.nat(), (pages, passes, k0) => {
      const k = k0 % (pages + 1)
      const report = checkMemoryDump(guestDump(MiB, pages, passes, k), MiB)
      assert.ok(report.ok, describeReport(report))
      assert.equal(report.pages, pages)
      assert.equal(report.passes, passes)
      assert.equal(report.boundary, k === 0 || k === pages ? undefined : k)
    }),
    seeded(t),
  )
})

/** A snapshot with one corrupted byte among the checked ones (the shape of the property that once flaked). */
const oneCorruptByte = fc.tuple(
  fc.integer({ min: 2, max: 48 }),
  fc.nat({ max: 0xffffffff }),
  fc.nat(),
  fc.nat(),
  fc.integer({ min: 0, max: 11 }),
  fc.integer({ min: 1, max: 255 }),
)

function corruptOne([pages, passes, k0, p, byte, delta]: [number, number, number, number, number, number]): Buffer {
  const buf = guestDump(MiB, pages, passes, k0 % (pages + 1))
  const at = (p % pages) * PAGE + byte
  buf[at] = (buf[at] + delta) & 0xff
  return buf
}

function assertAgrees(buf: Buffer): void {
  const report = checkMemoryDump(buf, MiB)
  const expected = oracleBadPage(buf, MiB)
  const pages = buf.length / PAGE
  assert.equal(report.ok, expected === pages, `oracle names page ${expected} of ${pages}: ${describeReport(report)}`)
  if (!report.ok) assert.equal(report.bad?.page, expected, describeReport(report))
}

test('checker: names exactly the first page where a corrupted dump stops being a snapshot the guest can leave', t => {
  fc.assert(
    fc.property(oneCorruptByte, c => assertAgrees(corruptOne(c))),
    seeded(t),
  )
  // Several corrupted bytes, anywhere among the checked ones.
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 24 }),
      fc.nat({ max: 0xffffffff }),
      fc.nat(),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 11 }), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      (pages, passes, k0, hits) => {
        const buf = guestDump(MiB, pages, passes, k0 % (pages + 1))
        for (const [p, byte, delta] of hits)
          buf[(p % pages) * PAGE + byte] = (buf[(p % pages) * PAGE + byte] + delta) & 0xff
        assertAgrees(buf)
      },
    ),
    seeded(t),
  )
})

test('checker: regression of seed 1384215690 ([3,0,687865847,172931650,0,255]): page 1 of a finished pass lags', () => {
  // Counters [0,255,0] with 3*256 passes: the guest had not started the next pass (first counter = passes), so
  // no page may lag and page 1 is the bad one. The checker used to take page 1 for a boundary and blame page 2.
  const buf = Buffer.alloc(3 * PAGE)
  for (let i = 0; i < 3; i++) {
    buf.writeUInt32LE(MiB + i * PAGE, i * PAGE + 4)
  }
  buf.writeUInt32LE(3 * 256, 8)
  buf[PAGE] = 255
  const report = checkMemoryDump(buf, MiB)
  assert.deepEqual(report.bad, { page: 1, address: MiB + PAGE, what: 'counter', expected: 0, actual: 255 })
  assert.equal(oracleBadPage(buf, MiB), 1)
  // Mid-pass the same corruption is ambiguous: [5,4,5,4] is page 1 of [5,5,5,4] or page 2 of [5,4,4,4]; the
  // checker names the first page no snapshot explains, page 2.
  const mid = guestDump(MiB, 4, 4, 3)
  mid[PAGE] = 4
  assert.equal(checkMemoryDump(mid, MiB).bad?.page, 2)
  assert.equal(oracleBadPage(mid, MiB), 2)
})

test('checker: reports the first bad page with its values', () => {
  const buf = guestDump(MiB, 10, 3 * 256 + 6, 4)
  buf[6 * PAGE] = 9
  const report = checkMemoryDump(buf, MiB)
  assert.equal(report.ok, false)
  assert.deepEqual(report.bad, { page: 6, address: MiB + 6 * PAGE, what: 'counter', expected: 6, actual: 9 })
  assert.match(describeReport(report), /page 6 at 0x106000 has counter 9, expected 6/)
  const moved = guestDump(MiB, 4, 0, 4)
  moved.writeUInt32LE(MiB, 2 * PAGE + 4)
  assert.match(describeReport(checkMemoryDump(moved, MiB)), /page 2 at 0x102000 carries tag 0x100000/)
  assert.equal(checkMemoryDump(Buffer.alloc(0), MiB).ok, false)
  // wrap-around: 0 followed by 255 is a valid boundary
  assert.ok(checkMemoryDump(guestDump(MiB, 5, 255, 2), MiB).ok)
  assert.equal(checkMemoryDump(guestDump(MiB, 5, 4 * 256 + 8, 2), MiB).passes, 4 * 256 + 8)
  // a first page whose counter disagrees with the pass count: pages were consistent but stale together
  const stale = guestDump(MiB, 5, 3 * 256 + 8, 2)
  stale.writeUInt32LE(3 * 256 + 3, 8)
  assert.match(describeReport(checkMemoryDump(stale, MiB)), /disagrees with the guest's count of finished passes/)
})

test('memtest guest: a live guest passes, a corrupted dump fails', { timeout: 60_000 }, async t => {
  if (!requires(t, 'qemu')) return
  const vm = await startLocalMemtest({ name: 'single', memoryMiB: 128 })
  try {
    await vm.waitForPasses(3)
    assert.match(await vm.serial(), /AB+/)
    const ok = await verifyMemoryIntegrityWith(vm.access(), vm.range)
    assert.equal(ok.pages, (vm.range.end - vm.range.start) / PAGE)
    assert.equal((await vm.qmp.execute('query-status')).status, 'running', 'resumed after the check')
    await vm.waitForPasses(2)
    // Corrupt the dump on its way to the checker: flip one counter in the middle.
    const access = vm.access()
    const check = access.check
    access.check = async (path, range) => {
      const f = await open(path, 'r+')
      const mid = Math.floor((range.end - range.start) / PAGE / 2) * PAGE
      const b = Buffer.alloc(1)
      await f.read(b, 0, 1, mid)
      b[0] = (b[0] + 3) & 0xff
      await f.write(b, 0, 1, mid)
      await f.close()
      return check(path, range)
    }
    await assert.rejects(verifyMemoryIntegrityWith(access, vm.range), (e: unknown) => {
      assert.ok(e instanceof MemoryIntegrityError)
      assert.equal(e.report.bad?.what, 'counter')
      assert.match(e.message, /guest memory corrupted: page \d+ at 0x[0-9a-f]+ has counter/)
      return true
    })
  } finally {
    await vm.kill()
  }
})

test('memtest guest: precopy over loopback between two QEMU processes keeps memory intact', {
  timeout: 120_000,
}, async t => {
  if (!requires(t, 'qemu')) return
  const src = await startLocalMemtest({ name: 'src', memoryMiB: 256 })
  const dst = await startLocalMemtest({ name: 'dst', memoryMiB: 256, incoming: true, disk: src.dir + '/memtest.raw' })
  try {
    await src.waitForPasses(3)
    const before = await verifyMemoryIntegrityWith(src.access(), src.range)
    const port = await freeLoopbackPort()
    const uri = `tcp:127.0.0.1:${port}`
    await dst.qmp.execute('migrate-incoming', { uri })
    // The guest redirties its whole range every few ms: allow a downtime long enough to converge.
    await src.qmp.execute('migrate-set-parameters', { 'downtime-limit': 20_000, 'max-bandwidth': 4 * 1024 * MiB })
    const done = src.qmp.waitForEvent<{ status: string }>('MIGRATION', {
      predicate: d => d.status === 'completed' || d.status === 'failed',
      timeout: 90_000,
    })
    await src.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] })
    await src.qmp.execute('migrate', { uri })
    const ev = await done
    assert.equal(ev.data?.status, 'completed', JSON.stringify(await src.qmp.execute('query-migrate')))
    const info = await src.qmp.execute('query-migrate')
    assert.equal(info.status, 'completed')
    assert.ok((info.ram?.transferred ?? 0) > 0)
    // The source passes through finish-migrate on its way to postmigrate.
    let srcStatus = (await src.qmp.execute('query-status')).status
    for (let i = 0; i < 100 && srcStatus === 'finish-migrate'; i++) {
      await new Promise(r => setTimeout(r, 10))
      srcStatus = (await src.qmp.execute('query-status')).status
    }
    assert.equal(srcStatus, 'postmigrate')
    // The destination runs the guest on from where it was: passes continue and memory is consistent.
    await dst.waitForPasses(3)
    const report = await verifyMemoryIntegrityWith(dst.access(), dst.range)
    assert.ok(report.ok)
    assert.equal(report.pages, (dst.range.end - dst.range.start) / PAGE)
    // Carried on, not booted afresh: more passes than before, and no firmware banner or 'A' on this side.
    assert.ok(report.passes > before.passes, `passes ${report.passes} after, ${before.passes} before`)
    assert.match(await dst.serial(), /^B+$/)
  } finally {
    await dst.kill()
    await src.kill()
  }
})
