// The VM manager against real QEMU and the real tiny image: exec framing, lifecycle and the faults of issue 4.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { cacheDir } from '../../agent/image/cache.ts'
import { ensureImage } from '../../agent/image/index.ts'
import { CommandNotFoundError } from '../../agent/qmp/index.ts'
import { probeAccel } from '../../agent/vm/accel.ts'
import { VmManager } from '../../agent/vm/manager.ts'
import { machine } from '../helpers/requirements.ts'
import { qemuProcesses, tempDir, waitFor } from './helpers.ts'

const dir = tempDir('vt-vm-test-')
const mgr = new VmManager({ host: 'h1', dir })

after(async () => {
  await mgr.destroyAll()
  rmSync(dir, { recursive: true, force: true })
})

describe('one tiny VM', { skip: !machine.qemu && !process.env.CI && 'needs qemu' }, () => {
  before(async () => {
    await mgr.create({
      name: 'a',
      accel: 'tcg',
      memory: '256M',
      disks: [{ image: 'tiny' }],
      nics: [{ ip: '10.9.0.2/24' }],
    })
  })

  test('exec returns stdout, stderr and the exit code; env is passed', async () => {
    const r = await mgr
      .get('a')
      .exec('echo out; echo err >&2; echo "$GREETING"; exit 7', { env: { GREETING: 'it\'s "quoted" $HOME' } })
    assert.equal(r.stdout.toString(), `out\nit's "quoted" $HOME\n`)
    assert.equal(r.stderr.toString(), 'err\n')
    assert.equal(r.exitCode, 7)
    await assert.rejects(mgr.get('a').exec('true', { env: { 'BAD-NAME': 'x' } }), /invalid environment variable name/)
  })

  test('1 MiB of output arrives intact', async () => {
    const r = await mgr.get('a').exec('head -c 1048576 /dev/urandom > /tmp/big; md5sum < /tmp/big >&2; cat /tmp/big')
    assert.equal(r.exitCode, 0)
    assert.equal(r.stdout.length, 1048576)
    assert.equal(createHash('md5').update(r.stdout).digest('hex'), r.stderr.toString().split(' ')[0])
  })

  test('binary output, no trailing newline and marker look-alikes survive the framing', async () => {
    const all = await mgr.get('a').exec('i=0; while [ $i -lt 256 ]; do printf "\\\\$(printf %o $i)"; i=$((i+1)); done')
    assert.deepEqual(
      [...all.stdout],
      Array.from({ length: 256 }, (_, i) => i),
    )
    const tricky = '@@0123456789abcdef X 0\n@@vt-ready 1.0\n@@deadbeefdeadbeef O 5'
    const r = await mgr.get('a').exec(`printf '%s' '${tricky}'; printf '%s' '${tricky}' >&2`)
    assert.equal(r.stdout.toString(), tricky)
    assert.equal(r.stderr.toString(), tricky)
    const multi = await mgr.get('a').exec("cat <<'EOF'\nline 1\n  'single' \"double\" `tick` $dollar \\\\back\nEOF")
    assert.equal(multi.stdout.toString(), 'line 1\n  \'single\' "double" `tick` $dollar \\\\back\n')
  })

  test('concurrent execs are queued and each gets its own result', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => mgr.get('a').exec(`echo ${i}; exit ${i}`)))
    results.forEach((r, i) => {
      assert.equal(r.stdout.toString(), `${i}\n`)
      assert.equal(r.exitCode, i)
    })
  })

  test('a guest command timeout kills it, and the channel keeps working', async () => {
    const t0 = Date.now()
    await assert.rejects(mgr.get('a').exec('sleep 30; echo never', { timeoutMs: 500 }), (e: Error) =>
      /VM a on host h1: `sleep 30; echo never` did not finish within 500 ms/.test(e.message),
    )
    assert.ok(Date.now() - t0 < 3000)
    const r = await mgr.get('a').exec('echo after; pidof sleep || echo no-sleep')
    assert.equal(r.stdout.toString(), 'after\nno-sleep\n')
  })

  test('QMP: status, unknown command is CommandNotFound, pause and resume', async () => {
    const m = mgr.get('a')
    const qmp = m.requireQmp()
    assert.equal((await qmp.execute('query-status')).status, 'running')
    await assert.rejects(qmp.execute('no-such-command'), CommandNotFoundError)
    await m.pause()
    assert.equal(m.status, 'paused')
    await assert.rejects(m.exec('true'), /VM a on host h1 is paused: cannot run `true` \(resume it first\)/)
    await m.resume()
    assert.equal((await m.exec('echo alive')).stdout.toString(), 'alive\n')
    assert.match(m.transcript(), /-> stop/)
  })

  test('the disk is an overlay on the cached base, which stays unchanged; the NIC is configured', async () => {
    const base = (await ensureImage('tiny')).disk
    const before = createHash('sha256').update(readFileSync(base)).digest('hex')
    const info = mgr.info('a')
    assert.equal(info.disks[0].overlayOf, base)
    await mgr.get('a').exec('echo hello-disk | dd of=/dev/vda bs=512 seek=100 conv=fsync 2>/dev/null')
    const r = await mgr.get('a').exec('dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -c 10')
    assert.equal(r.stdout.toString(), 'hello-disk')
    assert.equal(createHash('sha256').update(readFileSync(base)).digest('hex'), before)
    const ip = await mgr.get('a').exec('ip -4 addr show eth0')
    assert.match(ip.stdout.toString(), /10\.9\.0\.2\/24/)
    assert.match(mgr.get('a').console.text(), /vt-tiny: ready/)
  })
})

describe('faults', { skip: !machine.qemu && !process.env.CI && 'needs qemu' }, () => {
  test('unknown image is a clear error', async () => {
    await assert.rejects(mgr.create({ name: 'u', image: 'nosuch' }), /unknown image "nosuch": known images are 'tiny'/)
    await assert.rejects(mgr.create({ name: 'u', disks: [{ image: 'nosuch' }] }), /unknown image "nosuch"/)
  })

  test('memory larger than the host has is a clear error', async () => {
    await assert.rejects(
      mgr.create({ name: 'big', memory: '64T' }),
      /VM big on host h1: memory 65536\.0 GiB is more than the host has/,
    )
  })

  test('invalid specs are rejected with the field named', async () => {
    await assert.rejects(mgr.create({ name: 'bad name' } as never), /invalid VM spec on host h1: name:/)
    await assert.rejects(mgr.create({ name: 'x', cpus: 0 }), /cpus:/)
    await assert.rejects(
      mgr.create({ name: 'x', disks: [{}] }),
      /exactly one of "image", "path", "size", "memtest" or "volume"/,
    )
  })

  test('a probe boot leaves nothing behind and removes what a prober killed mid-probe left', async () => {
    const work = join(cacheDir(), 'kvm-probe')
    mkdirSync(work, { recursive: true })
    writeFileSync(join(work, 'left-by-a-killed-prober'), '')
    const probe = await probeAccel({ force: true })
    assert.equal(typeof probe.kvm, 'boolean', probe.reason)
    assert.equal(existsSync(work), false)
  })

  test('kvm where it does not work is a clear error', async () => {
    const probe = await probeAccel()
    if (probe.kvm) {
      const info = await mgr.create({ name: 'k', accel: 'kvm', memory: 128 })
      assert.equal(info.accel, 'kvm')
      await mgr.destroy('k')
    } else {
      await assert.rejects(
        mgr.create({ name: 'k', accel: 'kvm' }),
        /accel 'kvm' was requested but KVM does not work on host h1/,
      )
    }
  })

  test('QEMU refusing its arguments is a clear error (and no crash of this process)', async () => {
    await assert.rejects(mgr.create({ name: 'badarg', accel: 'tcg', extraArgs: ['-no-such-option'] }), (e: Error) =>
      /^VM badarg on host h1: QEMU exited while starting: QEMU exited with code 1: .*-no-such-option: invalid option/.test(
        e.message,
      ),
    )
    await new Promise(r => setTimeout(r, 200)) // a stray socket error would surface as an uncaught exception here
  })

  test('a kernel that does not boot: ready timeout with the console tail, nothing left behind', async () => {
    const bad = join(dir, 'garbage-kernel')
    writeFileSync(bad, Buffer.alloc(64 * 1024, 7))
    const t0 = Date.now()
    await assert.rejects(
      mgr.create({ name: 'nok', kernel: bad, ready: 'channel', accel: 'tcg', readyTimeoutMs: 3000 }),
      (e: Error) =>
        /^VM nok on host h1 was not ready within 3000 ms \(the guest's command channel never answered\)\. Console tail:\n/.test(
          e.message,
        ),
    )
    assert.ok(Date.now() - t0 < 10_000)
    assert.deepEqual(qemuProcesses(join(dir, 'vms', 'nok')), [])
  })

  test('a guest that never becomes ready: ready timeout with the console tail', async () => {
    const t0 = Date.now()
    await assert.rejects(
      mgr.create({ name: 'hang', accel: 'tcg', append: 'rdinit=/bin/sh', readyTimeoutMs: 10_000 }),
      (e: Error) =>
        /VM hang on host h1 was not ready within 10000 ms \(the guest's command channel never answered\)\. Console tail:\n/.test(
          e.message,
        ) && /\| .*#/.test(e.message),
    )
    assert.ok(Date.now() - t0 < 20_000)
    assert.deepEqual(qemuProcesses(join(dir, 'vms', 'hang')), [])
  })

  test('QEMU killed under a running exec: error within seconds naming VM and host', async () => {
    await mgr.create({ name: 'victim', accel: 'tcg' })
    const m = mgr.get('victim')
    const running = m.exec('sleep 60')
    await new Promise(r => setTimeout(r, 300))
    const t0 = Date.now()
    process.kill(m.pid, 'SIGKILL')
    await assert.rejects(running, (e: Error) =>
      /VM victim on host h1: `sleep 60` failed: QEMU was killed by SIGKILL/.test(e.message),
    )
    assert.ok(Date.now() - t0 < 3000, 'error within seconds')
    await assert.rejects(m.exec('true'), /VM victim on host h1: cannot run `true`: QEMU was killed by SIGKILL/)
    assert.equal(m.status, 'exited')
    await mgr.destroy('victim')
  })

  test('disks in the shared pool: overlay there, kept after destroy; no pool is a clear error', async () => {
    await assert.rejects(
      mgr.create({ name: 'sp', accel: 'tcg', disks: [{ image: 'tiny', pool: 'shared' }] }),
      /VM sp on host h1: disk disk0 asks for pool 'shared' but this cluster has no shared storage/,
    )
    const pool = join(dir, 'pool')
    mkdirSync(pool)
    const info = await mgr.create({
      name: 'sp',
      accel: 'tcg',
      sharedPool: pool,
      disks: [{ image: 'tiny', pool: 'shared' }],
    })
    assert.equal(info.disks[0].file, join(pool, 'overlays', 'sp-disk0.qcow2'))
    assert.equal((await mgr.get('sp').exec('test -b /dev/vda && echo disk')).stdout.toString(), 'disk\n')
    await mgr.destroy('sp')
    assert.ok(existsSync(info.disks[0].file), 'a shared overlay outlives the VM on this host')
  })

  test('graceful shutdown powers the guest off', async () => {
    await mgr.create({ name: 'off', accel: 'tcg' })
    const t0 = Date.now()
    const info = await mgr.shutdown('off', 10_000)
    assert.equal(info.status, 'exited')
    assert.equal(info.exitCode, 0)
    assert.ok(Date.now() - t0 < 8000)
    await mgr.destroy('off')
  })

  test('no qemu process survives', async () => {
    await mgr.destroyAll()
    assert.ok(await waitFor(() => qemuProcesses(dir).length === 0, 5000), `left: ${qemuProcesses(dir)}`)
  })
})
