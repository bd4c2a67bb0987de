// The exec framing without a VM: the host's frame parser against arbitrary output split at arbitrary points,
// and the command escaping against the same busybox printf the guest runs.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import fc from 'fast-check'
import { escapeForGuest, FrameParser, guestScript } from '../../agent/vm/guest.ts'
import { seeded } from '../helpers/property.ts'

function frames(nonce: string, out: Buffer, err: Buffer, code: number): Buffer {
  return Buffer.concat([
    Buffer.from(`@@${nonce} O ${out.length}\n`),
    out,
    Buffer.from(`@@${nonce} E ${err.length}\n`),
    err,
    Buffer.from(`@@${nonce} X ${code}\n`),
  ])
}

test('frames survive any bytes and any chunking; junk and ready lines between frames are skipped', t => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          nonce: fc.stringMatching(/^[0-9a-f]{16}$/),
          out: fc.uint8Array({ maxLength: 3000 }),
          err: fc.uint8Array({ maxLength: 300 }),
          code: fc.integer({ min: 0, max: 255 }),
        }),
        { minLength: 1, maxLength: 5 },
      ),
      fc.array(fc.integer({ min: 1, max: 4000 }), { minLength: 1, maxLength: 20 }),
      (runs, cuts) => {
        const stream = Buffer.concat(
          runs.flatMap(r => [
            Buffer.from('noise line\n@@vt-ready 1.5\n'),
            frames(r.nonce, Buffer.from(r.out), Buffer.from(r.err), r.code),
          ]),
        )
        const got: { nonce: string; kind: string; value: number; data?: Buffer }[] = []
        let ready = 0
        const p = new FrameParser(
          f => got.push(f),
          () => ready++,
        )
        let at = 0
        let i = 0
        while (at < stream.length) {
          const n = cuts[i++ % cuts.length]
          p.push(stream.subarray(at, at + n))
          at += n
        }
        assert.equal(ready, runs.length)
        assert.equal(got.length, runs.length * 3)
        runs.forEach((r, k) => {
          const [o, e, x] = got.slice(k * 3, k * 3 + 3)
          assert.deepEqual([o.nonce, o.kind, e.kind, x.kind, x.value], [r.nonce, 'O', 'E', 'X', r.code])
          assert.deepEqual(o.data, Buffer.from(r.out))
          assert.deepEqual(e.data, Buffer.from(r.err))
        })
      },
    ),
    seeded(t, { numRuns: 200 }),
  )
})

test("escapeForGuest round-trips through busybox printf '%b' (the guest's decoder)", t => {
  const busybox = spawnSync('busybox', ['true'])
  if (busybox.error) {
    t.skip('busybox is not installed on this machine')
    return
  }
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), s => {
      const text = s.replace(/\0/g, '') // a shell script cannot hold NUL bytes
      const escaped = escapeForGuest(text)
      assert.match(escaped, /^[A-Za-z0-9_./,:=+@%^\\-]*$/, 'only safe characters on the wire')
      const r = spawnSync('busybox', ['sh', '-c', 'printf "%b" "$1"', '_', escaped])
      assert.deepEqual(r.stdout, Buffer.from(text, 'utf8'))
    }),
    seeded(t, { numRuns: 60 }),
  )
})

test('guestScript quotes env values and refuses bad names', () => {
  const script = guestScript('echo "$A"', { A: "it's $HOME `x`", B: '' })
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' })
  assert.equal(r.stdout, "it's $HOME `x`\n")
  assert.throws(() => guestScript('true', { 'A-B': '1' }), /invalid environment variable name "A-B"/)
})
