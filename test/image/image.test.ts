// The image builder: the cpio writer checked by cpio(1), the lock, and the tiny image built into a fresh cache.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { withLock } from '../../agent/image/cache.ts'
import { ensureImage, writeCpio } from '../../agent/image/index.ts'
import { requires } from '../helpers/requirements.ts'

const dir = mkdtempSync(join(tmpdir(), 'vt-image-test-'))
after(() => rmSync(dir, { recursive: true, force: true }))

test('writeCpio output is read back by cpio(1) with contents, modes and symlinks', () => {
  const data = Buffer.from(Array.from({ length: 1001 }, (_, i) => i % 256))
  const archive = writeCpio([
    { path: 'bin', type: 'dir' },
    { path: 'bin/tool', type: 'file', data, mode: 0o755 },
    { path: 'bin/link', type: 'symlink', target: 'tool' },
    { path: 'empty', type: 'file', data: new Uint8Array() },
    { path: 'etc', type: 'dir', mode: 0o700 },
    { path: 'etc/odd name', type: 'file', data: Buffer.from('x\n'), mode: 0o600 },
  ])
  assert.equal(archive.length % 512, 0)
  const file = join(dir, 'a.cpio')
  writeFileSync(file, archive)
  const out = join(dir, 'out')
  execFileSync('mkdir', ['-p', out])
  const r = spawnSync('cpio', ['-idm', '--quiet', '-F', file], { cwd: out, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(readFileSync(join(out, 'bin/tool')), data)
  assert.equal(statSync(join(out, 'bin/tool')).mode & 0o777, 0o755)
  assert.equal(readlinkSync(join(out, 'bin/link')), 'tool')
  assert.equal(statSync(join(out, 'empty')).size, 0)
  assert.equal(statSync(join(out, 'etc')).mode & 0o777, 0o700)
  assert.equal(readFileSync(join(out, 'etc/odd name'), 'utf8'), 'x\n')
  const list = execFileSync('cpio', ['-t', '--quiet', '-F', file], { encoding: 'utf8' }).trim().split('\n')
  assert.deepEqual(list, ['bin', 'bin/tool', 'bin/link', 'empty', 'etc', 'etc/odd name'])
})

test('writeCpio refuses bad paths and duplicates', () => {
  assert.throws(() => writeCpio([{ path: '../x', type: 'dir' }]), /invalid path "..\/x"/)
  assert.throws(() => writeCpio([{ path: 'a//b', type: 'dir' }]), /invalid path/)
  assert.throws(
    () =>
      writeCpio([
        { path: 'a', type: 'dir' },
        { path: '/a', type: 'dir' },
      ]),
    /duplicate path a/,
  )
})

test('withLock serializes holders and takes over a lock whose owner is dead', async () => {
  const lock = join(dir, 'x.lock')
  const events: string[] = []
  const holder = (name: string) =>
    withLock(lock, async () => {
      events.push(`${name} in`)
      await delay(50)
      events.push(`${name} out`)
    })
  await Promise.all([holder('a'), holder('b'), holder('c')])
  for (let i = 0; i < events.length; i += 2) {
    assert.equal(events[i].split(' ')[0], events[i + 1].split(' ')[0], `overlap: ${events.join(', ')}`)
  }
  // A lock left by a process that no longer exists is stale.
  const dead = spawnSync('true').pid as number
  writeFileSync(lock, `${dead}\n`)
  const t0 = Date.now()
  assert.equal(await withLock(lock, async () => 'got it', { timeoutMs: 2000 }), 'got it')
  assert.ok(Date.now() - t0 < 1000)
  assert.equal(existsSync(lock), false)
})

test('the tiny image builds into an empty cache once, even with concurrent callers', async t => {
  if (!requires(t, 'qemu')) return
  const cache = join(dir, 'cache')
  const saved = process.env.VT_CACHE_DIR
  process.env.VT_CACHE_DIR = cache
  try {
    const progress: string[] = []
    const [a, b] = await Promise.all([
      ensureImage('tiny', { progress: m => progress.push(m) }),
      ensureImage('tiny', { progress: m => progress.push(m) }),
    ])
    assert.equal(a.dir, b.dir)
    assert.equal(progress.filter(m => m.startsWith('building the tiny image')).length, 1, progress.join('\n'))
    assert.ok(a.dir.startsWith(join(cache, 'images', 'tiny-')))
    for (const f of [a.kernel, a.initrd, a.disk]) assert.ok(existsSync(f), f)
    const list = execFileSync('cpio', ['-t', '--quiet', '-F', a.initrd], { encoding: 'utf8' }).split('\n')
    for (const f of [
      'init',
      'bin/busybox',
      'bin/sh',
      'dev/console',
      'lib/modules/virtio_console.ko',
      'lib/modules/virtio_net.ko',
    ]) {
      assert.ok(list.includes(f), `initrd lacks ${f}`)
    }
    const manifest = JSON.parse(readFileSync(join(a.dir, 'manifest.json'), 'utf8'))
    assert.deepEqual(manifest.modules.core.at(-1), 'virtio_pci')
    // Cached: the second call is quick and builds nothing.
    const t0 = Date.now()
    const again = await ensureImage('tiny', { progress: m => progress.push(`again: ${m}`) })
    assert.equal(again.dir, a.dir)
    assert.ok(Date.now() - t0 < 1000)
    assert.ok(!progress.some(m => m.startsWith('again: building')))
    // No temporary or lock files are left.
    const left = execFileSync('ls', ['-a', join(cache, 'images')], { encoding: 'utf8' }).split('\n')
    assert.ok(!left.some(f => f.startsWith('.tmp') || f.endsWith('.lock')), left.join(' '))
    await assert.rejects(ensureImage('nosuch'), /unknown image "nosuch": known images are 'tiny'/)
  } finally {
    if (saved === undefined) delete process.env.VT_CACHE_DIR
    else process.env.VT_CACHE_DIR = saved
  }
})
