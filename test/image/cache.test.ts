// A broken image cache is noticed and repaired, or reported exactly: each case corrupts a copy of the cache in a
// temp VT_CACHE_DIR (a truncated kernel, a changed initrd of the right size, a missing or garbage manifest, a
// zeroed memtest image) and goes through what users run: a VM boot, `vt image build`, `vt image list`.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ensureImage, type TinyImage } from '../../agent/image/index.ts'
import { buildMemtestImage } from '../../agent/memtest/image.ts'
import { VmManager } from '../../agent/vm/manager.ts'
import { machine } from '../helpers/requirements.ts'
import { qemuProcesses } from '../vm/helpers.ts'

const repo = join(import.meta.dirname, '../..')
const work = mkdtempSync(join(tmpdir(), 'vt-cache-test-'))
const cache = join(work, 'cache')
const saved = process.env.VT_CACHE_DIR

function vt(args: string[], env: NodeJS.ProcessEnv = {}) {
  const full: NodeJS.ProcessEnv = { ...process.env, VT_CACHE_DIR: cache, NO_COLOR: '1', ...env }
  delete full.NODE_TEST_CONTEXT
  const r = spawnSync(process.execPath, [join(repo, 'bin/vt.js'), ...args], {
    encoding: 'utf8',
    env: full,
    timeout: 300_000,
  })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

describe('a broken image cache', { skip: !machine.qemu && !process.env.CI && 'needs qemu' }, () => {
  let img: TinyImage
  let sizes: Record<string, number>
  const progress: string[] = []
  const ensure = () => ensureImage('tiny', { progress: m => progress.push(m) })

  before(async () => {
    process.env.VT_CACHE_DIR = cache
    img = await ensure()
    sizes = Object.fromEntries([img.kernel, img.initrd, img.disk].map(f => [f, statSync(f).size]))
  })
  after(() => {
    if (saved === undefined) delete process.env.VT_CACHE_DIR
    else process.env.VT_CACHE_DIR = saved
    rmSync(work, { recursive: true, force: true })
  })

  test('a truncated kernel is noticed and rebuilt before a VM boots from it', async () => {
    truncateSync(img.kernel, 4096)
    const dir = join(work, 'state')
    const mgr = new VmManager({ host: 'h1', dir, progress: m => progress.push(m) })
    try {
      progress.length = 0
      const info = await mgr.create({ name: 'after-repair', accel: 'tcg' })
      assert.equal(info.status, 'running')
      assert.equal((await mgr.get('after-repair').exec('echo ok')).stdout.toString(), 'ok\n')
    } finally {
      await mgr.destroyAll()
    }
    assert.ok(
      progress.includes(
        `the cached tiny image ${img.dir} is broken: vmlinuz is 4096 bytes, the manifest says ${sizes[img.kernel]} (truncated); rebuilding it`,
      ),
      progress.join('\n'),
    )
    assert.equal(statSync(img.kernel).size, sizes[img.kernel])
    assert.deepEqual(qemuProcesses(dir), [])
  })

  test('an initrd changed in place (same size) is caught by its hash and rebuilt', async () => {
    const data = readFileSync(img.initrd)
    data.fill(0, 1000, 2000)
    writeFileSync(img.initrd, data)
    progress.length = 0
    await ensure()
    assert.ok(
      progress.some(m =>
        m.endsWith('initrd.cpio does not match the sha256 in the manifest (its content changed); rebuilding it'),
      ),
    )
    assert.notDeepEqual(readFileSync(img.initrd), data)
  })

  test('vt image build repairs a missing manifest (no ENOTEMPTY wedge) and leaves no temporary dirs', () => {
    rmSync(join(img.dir, 'manifest.json'))
    const r = vt(['image', 'build'])
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /is broken: manifest\.json is missing; rebuilding it/)
    assert.match(r.out, /tiny image repaired in/)
    assert.ok(existsSync(join(img.dir, 'manifest.json')))
    const left = readdirSync(join(cache, 'images')).filter(f => f.startsWith('.') || f.endsWith('.lock'))
    assert.deepEqual(left, [])
    // Whole again: a second build says nothing about repairs.
    const again = vt(['image', 'build'])
    assert.equal(again.code, 0, again.err)
    assert.doesNotMatch(again.out, /broken|building/)
  })

  test('a garbage manifest: vt image list names the entry and the problem; vt image build repairs it', () => {
    writeFileSync(join(img.dir, 'manifest.json'), '{ not json')
    const list = vt(['image', 'list'])
    assert.equal(list.code, 0, list.err)
    assert.match(list.out, new RegExp(`tiny-${img.key} {2}broken: manifest\\.json is not valid JSON \\(.+\\)`))
    const r = vt(['image', 'build'])
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /is broken: manifest\.json is not valid JSON/)
    assert.match(vt(['image', 'list']).out, new RegExp(`tiny-${img.key} {2}kernel `))
  })

  test('a broken entry that cannot be rebuilt is reported with the file, the problem and the fix', () => {
    truncateSync(img.initrd, 10)
    // qemu-img is needed to build the image: a stand-in that fails makes the rebuild fail.
    const bin = join(work, 'bin')
    mkdirSync(bin, { recursive: true })
    writeFileSync(join(bin, 'qemu-img'), '#!/bin/sh\necho "qemu-img: unavailable in this test" >&2\nexit 1\n')
    chmodSync(join(bin, 'qemu-img'), 0o755)
    const r = vt(['image', 'build'], { PATH: `${bin}:${process.env.PATH}` })
    assert.equal(r.code, 1, r.out)
    assert.match(
      r.err,
      new RegExp(
        `the cached tiny image ${img.dir} is broken \\(initrd\\.cpio is 10 bytes, the manifest says ${sizes[img.initrd]} \\(truncated\\)\\) and rebuilding it failed: .*\\nFix: remove ${img.dir} and run \`vt image build\``,
        's',
      ),
    )
    const fixed = vt(['image', 'build'])
    assert.equal(fixed.code, 0, fixed.err)
    assert.equal(statSync(img.initrd).size, sizes[img.initrd])
  })

  test('a zeroed memtest image of the right size is rewritten on use; vt image build and --force repair it', async () => {
    const range = { start: 2 * 1024 * 1024, end: 64 * 1024 * 1024 }
    const path = await buildMemtestImage(range, cache)
    const good = readFileSync(path)
    writeFileSync(path, Buffer.alloc(good.length))
    assert.equal(await buildMemtestImage(range, cache), path)
    assert.deepEqual(readFileSync(path), good, 'rewritten on use')

    writeFileSync(path, Buffer.alloc(good.length))
    const r = vt(['image', 'build'])
    assert.equal(r.code, 0, r.err)
    assert.match(
      r.out,
      /memtest image removed \(rewritten when next used\): memtest-[0-9a-f]{16}\.raw: its content does not match its name \(corrupted\)/,
    )
    assert.equal(existsSync(path), false)

    await buildMemtestImage(range, cache)
    const forced = vt(['image', 'build', '--force'])
    assert.equal(forced.code, 0, forced.err)
    assert.match(forced.out, /building the tiny image/)
    assert.match(forced.out, /memtest-[0-9a-f]{16}\.raw: rebuilt on next use \(--force\)/)
    assert.equal(existsSync(path), false)
    assert.deepEqual(readFileSync(await buildMemtestImage(range, cache)), good)
  })
})
