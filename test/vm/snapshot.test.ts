// Snapshots and templates against real QEMU and the tiny image: a snapshot restored in place goes back in time
// (memory and disk), and clones of a template are machines of their own (MAC, hostname, clock, RNG, channel).
// Templates go to a temporary cache (the images are shared with the real one, so nothing is rebuilt).
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { cacheDir } from '../../agent/image/cache.ts'
import { VmManager } from '../../agent/vm/manager.ts'
import { machine } from '../helpers/requirements.ts'
import { qemuProcesses, tempDir, waitFor } from './helpers.ts'

const dir = tempDir('vt-snapshot-test-')
const realCache = cacheDir()
const cache = join(dir, 'cache')
mkdirSync(join(realCache, 'images'), { recursive: true })
mkdirSync(cache, { recursive: true })
symlinkSync(join(realCache, 'images'), join(cache, 'images'))
const savedEnv = process.env.VT_CACHE_DIR
process.env.VT_CACHE_DIR = cache
const mgr = new VmManager({ host: 'h1', dir: join(dir, 'session') })

after(async () => {
  await mgr.destroyAll()
  if (savedEnv === undefined) delete process.env.VT_CACHE_DIR
  else process.env.VT_CACHE_DIR = savedEnv
  rmSync(dir, { recursive: true, force: true })
})

/** The disk's first line, read past the page cache (memory is restored too: the disk must say it by itself). */
const DISK = 'echo 3 > /proc/sys/vm/drop_caches; head -c 512 /dev/vda | head -n 1'
const write = (text: string) =>
  `echo ${text} > /run/f; dd if=/run/f of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null`

const out = async (vm: string, cmd: string) => {
  const r = await mgr.get(vm).exec(cmd)
  assert.equal(r.exitCode, 0, `${cmd}: ${r.stderr}`)
  return r.stdout.toString().trim()
}

describe('snapshots and templates', { skip: !machine.qemu && !process.env.CI && 'needs qemu' }, () => {
  before(async () => {
    await mgr.create({ name: 'a', accel: 'tcg', memory: '128M', disks: [{ image: 'tiny' }] })
  })

  test('restore in place brings back memory and disk as they were at the snapshot', async () => {
    await out(
      'a',
      'echo before > /run/mem; echo one > /run/f; dd if=/run/f of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null',
    )
    const snap = await mgr.snapshot('a', 'ready')
    assert.ok(snap.stateBytes > 1024 * 1024, `state of ${snap.stateBytes} bytes`)
    assert.equal(await out('a', `cat /run/mem; ${DISK}`), 'before\none', 'the VM runs on after a snapshot')
    await out('a', `echo after > /run/mem; ${write('two')}`)
    const pid = mgr.info('a').pid
    const info = await mgr.restore('a', 'ready')
    assert.notEqual(info.pid, pid, 'a new QEMU')
    assert.equal(info.status, 'running')
    assert.deepEqual(info.restored?.from, 'snapshot')
    assert.equal(info.restored?.prestarted, true, 'the QEMU spawned in advance after the snapshot')
    assert.equal(await out('a', `cat /run/mem; ${DISK}`), 'before\none')
    assert.equal(await out('a', 'hostname'), 'a')
    // Again, from the same snapshot: the disk of the first restore is not its base.
    await out('a', write('three'))
    assert.equal((await mgr.restore('a', 'ready')).restored?.prestarted, true, 'a spare again after a restore')
    assert.equal(await out('a', DISK), 'one')
    // Another snapshot takes the spare; a restore of the first one then starts its QEMU itself.
    await out('a', write('four'))
    await mgr.snapshot('a', 'other')
    const back = await mgr.restore('a', 'ready')
    assert.equal(back.restored?.prestarted, undefined)
    assert.equal(await out('a', `cat /run/mem; ${DISK}`), 'before\none')
    assert.equal((await mgr.restore('a', 'other')).restored?.prestarted, undefined)
    assert.equal(await out('a', DISK), 'four')
    await assert.rejects(mgr.restore('a', 'nope'), /has no snapshot "nope" \(its snapshots: ready, other\)/)
  })

  test('clones of a template: own MAC, hostname, clock, RNG and a working channel', async () => {
    const spec = { accel: 'tcg' as const, memory: '128M', nics: [{ mode: 'user' as const }], template: true }
    const first = await mgr.create({ ...spec, name: 'c1' })
    const second = await mgr.create({
      ...spec,
      name: 'c2',
      nics: [{ mode: 'user', mac: '52:54:00:0c:00:02', ip: '10.1.2.3/24' }],
    })
    assert.equal(first.restored?.from, 'template')
    assert.equal(second.restored?.from, 'template')
    assert.equal(second.restored?.built, undefined, 'the second one found the template')
    assert.equal(first.restored?.name, second.restored?.name, 'one template for one shape')
    assert.equal(readdirSync(join(cache, 'templates')).filter(f => !f.endsWith('.lock')).length, 1)

    assert.equal(await out('c1', 'hostname'), 'c1')
    assert.equal(await out('c2', 'hostname'), 'c2')
    const mac1 = await out('c1', 'cat /sys/class/net/eth0/address')
    assert.equal(await out('c2', 'cat /sys/class/net/eth0/address'), '52:54:00:0c:00:02')
    assert.match(mac1, /^52:54:00:/)
    assert.notEqual(mac1, '52:54:00:0c:00:02')
    assert.notEqual(mac1, '52:54:00:7e:00:00', 'not the template MAC')
    // QEMU's receive filter follows the guest: frames to the new MAC reach it.
    const filter = (await mgr.get('c2').requireQmp().execute('query-rx-filter')) as { 'main-mac': string }[]
    assert.equal(filter[0]['main-mac'], '52:54:00:0c:00:02')
    assert.match(await out('c2', 'ip -4 addr show dev eth0'), /10\.1\.2\.3\/24/)

    // The template's clock stood still since its save; a clone's is now.
    for (const vm of ['c1', 'c2']) {
      const guest = Number(await out(vm, 'date +%s'))
      assert.ok(Math.abs(guest - Date.now() / 1000) < 3, `${vm}'s clock is ${guest}, host ${Date.now() / 1000}`)
    }
    const rnd = (vm: string) => out(vm, 'head -c 32 /dev/urandom | od -An -tx1 | tr -d " \\n"')
    const [r1, r2] = await Promise.all([rnd('c1'), rnd('c2')])
    assert.equal(r1.length, 64)
    assert.notEqual(r1, r2, 'two clones must not produce the same random bytes')
  })

  test('a clone of a snapshot of another VM; snapshots go with their VMs', async () => {
    await out('a', write('from-a'))
    await mgr.snapshot('a', 'base')
    const info = await mgr.create({ name: 'b', accel: 'tcg', memory: '128M', from: { vm: 'a', snapshot: 'base' } })
    assert.equal(info.restored?.from, 'snapshot')
    assert.equal(await out('b', `${DISK}; hostname`), 'from-a\nb')
    await out('b', write('from-b'))
    assert.equal(await out('a', DISK), 'from-a', 'the clone writes its own disk')
    const snaps = join(dir, 'session', 'snapshots')
    await mgr.destroy('a')
    assert.ok(existsSync(snaps), "a's snapshots stay while its clone lives")
    assert.equal(await out('b', DISK), 'from-b')
    await mgr.destroy('b')
    assert.ok(!existsSync(snaps), 'and go with the last VM that needs them')
  })

  test('nothing is left running', async () => {
    await mgr.destroyAll()
    assert.ok(await waitFor(() => qemuProcesses(dir).length === 0, 10_000), `QEMU left: ${qemuProcesses(dir)}`)
  })
})
