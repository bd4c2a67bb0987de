// The memory-integrity guest and its checker: the committed boot sector matches its source, the checker
// accepts exactly the snapshots the guest can produce, and a real guest migrated between two QEMU processes
// over loopback keeps its memory intact while a corrupted dump is caught.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { open } from 'node:fs/promises'
import { test } from 'node:test'
import fc from 'fast-check'
import { checkMemoryDump, describeReport } from '../../src/migration/integrity.ts'
import { assembleBootblock } from '../../src/migration/memtest/assemble.ts'
import { bootblock } from '../../src/migration/memtest/bootblock.ts'
import { memtestBootSector, memtestRange } from '../../src/migration/memtest/image.ts'
import { MemoryIntegrityError, verifyMemoryIntegrityWith } from '../../src/migration/verify.ts'
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
 * A dump as the guest would leave it: `pages` pages from `start`, counters c for pages < k and c-1 after,
 * and the count of finished passes in page 0 (`laps` full wraps of the byte counter plus what it shows).
 */
function snapshot(start: number, pages: number, counter: number, boundary: number, laps = 3): Buffer {
  const buf = Buffer.alloc(pages * PAGE, 0xcc)
  for (let i = 0; i < pages; i++) {
    buf.writeUInt32LE(i < boundary ? counter : (counter + 255) & 0xff, i * PAGE)
    buf.writeUInt32LE(start + i * PAGE, i * PAGE + 4)
    buf.writeUInt32LE(0, i * PAGE + 8)
  }
  const first = buf.readUInt32LE(0)
  // Mid-pass the first page is one ahead of the finished passes; at a pass boundary they agree.
  const finished = boundary > 0 && boundary < pages ? (first + 255) & 0xff : first
  buf.writeUInt32LE(laps * 256 + finished, 8)
  return buf
}

test('checker: every snapshot the guest can leave passes', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 255 }), fc.nat(), (pages, c, b) => {
      const boundary = b % (pages + 1)
      // boundary 0 means all pages are at the same (older) value: the first page defines the counter.
      const report = checkMemoryDump(snapshot(MiB, pages, c, boundary), MiB)
      assert.ok(report.ok, describeReport(report))
      assert.equal(report.pages, pages)
      assert.equal(report.boundary, boundary === 0 || boundary === pages ? undefined : boundary)
    }),
  )
})

test('checker: any corrupted counter or tag byte is caught and named', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 48 }),
      fc.integer({ min: 0, max: 255 }),
      fc.nat(),
      fc.nat(),
      fc.integer({ min: 0, max: 11 }),
      fc.integer({ min: 1, max: 255 }),
      (pages, c, b, p, byte, delta) => {
        const boundary = 1 + (b % pages)
        const buf = snapshot(MiB, pages, c, boundary)
        const page = p % pages
        buf[page * PAGE + byte] = (buf[page * PAGE + byte] + delta) & 0xff
        const report = checkMemoryDump(buf, MiB)
        // A counter bumped by exactly one at the boundary's edge is still a consistent snapshot (the loop
        // could have reached one page further), so only assert what must be detected.
        const stillConsistent =
          byte === 0 && ((page === boundary && delta === 1) || (page === boundary - 1 && delta === 255 && page > 0))
        // Page 0's bytes 9..11 are the high bytes of the pass count, which no snapshot can check.
        if (stillConsistent || (page === 0 && byte >= 9)) return
        assert.equal(report.ok, false, `page ${page} byte ${byte} +${delta} went unnoticed`)
        assert.ok(report.bad)
        // The first page is the reference, so its corruption may show at page 1.
        assert.ok(
          report.bad.page <= Math.max(page, 1),
          `reported page ${report.bad.page} after the corrupted page ${page}`,
        )
      },
    ),
  )
})

test('checker: reports the first bad page with its values', () => {
  const buf = snapshot(MiB, 10, 7, 4)
  buf[6 * PAGE] = 9
  const report = checkMemoryDump(buf, MiB)
  assert.equal(report.ok, false)
  assert.deepEqual(report.bad, { page: 6, address: MiB + 6 * PAGE, what: 'counter', expected: 6, actual: 9 })
  assert.match(describeReport(report), /page 6 at 0x106000 has counter 9, expected 6/)
  const moved = snapshot(MiB, 4, 1, 4)
  moved.writeUInt32LE(MiB, 2 * PAGE + 4)
  assert.match(describeReport(checkMemoryDump(moved, MiB)), /page 2 at 0x102000 carries tag 0x100000/)
  assert.equal(checkMemoryDump(Buffer.alloc(0), MiB).ok, false)
  // wrap-around: 0 followed by 255 is a valid boundary
  assert.ok(checkMemoryDump(snapshot(MiB, 5, 0, 2), MiB).ok)
  assert.equal(checkMemoryDump(snapshot(MiB, 5, 9, 2, 4), MiB).passes, 4 * 256 + 8)
  // a first page whose counter disagrees with the pass count: pages were consistent but stale together
  const stale = snapshot(MiB, 5, 9, 2)
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
