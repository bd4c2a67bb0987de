// Real guests: the debian image (built once, cached like the tiny one) booted by the VM manager, with exec and
// files through qemu-guest-agent; files on the tiny guest through its own channel; and a guest without the
// agent getting an error that says so. Nothing is left running afterwards.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { ensureImage } from '../../agent/image/index.ts'
import { VmManager } from '../../agent/vm/manager.ts'
import { machine, requires } from '../helpers/requirements.ts'
import { qemuProcesses, tempDir } from './helpers.ts'

const dir = tempDir('vt-debian-test-')
const mgr = new VmManager({ host: 'h1', dir, progress: m => process.stderr.write(`image: ${m}\n`) })

after(async () => {
  await mgr.destroyAll()
  assert.deepEqual(qemuProcesses(dir), [], 'QEMU processes left behind')
  rmSync(dir, { recursive: true, force: true })
})

const skip = !(machine.qemu && machine.mmdebstrap && machine.root) && !process.env.CI && 'needs qemu, mmdebstrap, root'

describe('the debian guest', { skip }, () => {
  test('builds once, boots to qemu-guest-agent, and exec gives output and exit codes as on the tiny guest', async t => {
    if (!requires(t, 'qemu', 'mmdebstrap', 'root')) return
    const img = await ensureImage('debian')
    for (const f of [img.kernel, img.initrd, img.disk]) assert.ok(existsSync(f), f)
    assert.equal((await ensureImage('debian')).dir, img.dir, 'the second call uses the cache')
    // Alongside: the same system as "your own image", a disk given by path (an overlay in the test's dir) with
    // its kernel, waiting for the agent with ready: 'agent'.
    const own = join(dir, 'own.qcow2')
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', img.disk, own])
    const t0 = Date.now()
    const [info] = await Promise.all([
      mgr.create({ name: 'deb', image: 'debian', accel: 'tcg', memory: '512M', readyTimeoutMs: 600_000 }),
      mgr.create({
        name: 'own',
        kernel: img.kernel,
        initrd: img.initrd,
        append: img.append,
        disks: [{ path: own }],
        ready: 'agent',
        accel: 'tcg',
        memory: '512M',
        readyTimeoutMs: 600_000,
      }),
    ])
    t.diagnostic(`debian boot to agent ready: ${info.readyMs?.toFixed(0)} ms (create ${Date.now() - t0} ms)`)
    assert.equal(info.disks[0].id, 'root')
    const ownVersion = await mgr.get('own').exec('cat /etc/debian_version')
    assert.equal(ownVersion.exitCode, 0, ownVersion.stderr.toString())
    await mgr.destroy('own')
    const vm = mgr.get('deb')
    const r = await vm.exec('echo out; echo err >&2; echo "$GREETING"; exit 7', { env: { GREETING: "it's $HOME" } })
    assert.equal(r.stdout.toString(), "out\nit's $HOME\n")
    assert.equal(r.stderr.toString(), 'err\n')
    assert.equal(r.exitCode, 7)
    const sys = await vm.exec('cat /etc/debian_version; hostname; test -d /run/systemd/system && echo systemd; pwd')
    assert.match(sys.stdout.toString(), /^12\.\d+\ndeb\nsystemd\n\/root\n$/, `${sys.stdout}${sys.stderr}`)
    const err = await vm.exec('sleep 61', { timeoutMs: 2000 }).catch(e => e)
    assert.match(String(err), /`sleep 61` did not finish within 2000 ms \(its processes were killed\)/)
    // -f: a killed process not yet reaped (a zombie) has no command line, so only a live `sleep 61` matches.
    const left = await vm.exec("pgrep -af '^sleep 61$' || echo none")
    assert.equal(left.stdout.toString(), 'none\n', `still running: ${left.stdout}`)
  })

  test('files go both ways through guest-file-*', async t => {
    if (!requires(t, 'qemu', 'mmdebstrap', 'root')) return
    const vm = mgr.get('deb')
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31) % 256))
    await vm.writeFile('/root/blob', data, { mode: 0o600 })
    assert.equal((await vm.exec('stat -c %a:%s /root/blob')).stdout.toString(), '600:300000\n')
    assert.deepEqual(await vm.readFile('/root/blob'), data)
    await assert.rejects(vm.readFile('/nonexistent'), /cannot read \/nonexistent in the guest: .*No such file/)
  })
})

describe('guests without qemu-guest-agent', { skip: !machine.qemu && !process.env.CI && 'needs qemu' }, () => {
  test('the tiny guest reads and writes files through its own channel', async t => {
    if (!requires(t, 'qemu')) return
    await mgr.create({ name: 'tiny', accel: 'tcg', memory: '256M' })
    const vm = mgr.get('tiny')
    const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 13) % 256))
    await vm.writeFile('/tmp/blob', data, { mode: 0o751 })
    assert.equal((await vm.exec('stat -c %a /tmp/blob')).stdout.toString(), '751\n')
    assert.deepEqual(await vm.readFile('/tmp/blob'), data)
    await assert.rejects(vm.readFile('/nonexistent'), /reading \/nonexistent in the guest failed/)
    await mgr.destroy('tiny')
  })

  test('exec on a guest that runs no agent names what is missing', async t => {
    if (!requires(t, 'qemu')) return
    // The tiny kernel and initramfs booted as a plain kernel: no vt channel, no qemu-guest-agent.
    const tiny = await ensureImage('tiny')
    await mgr.create({
      name: 'bare',
      accel: 'tcg',
      memory: '256M',
      kernel: tiny.kernel,
      initrd: tiny.initrd,
      append: tiny.append,
    })
    const vm = mgr.get('bare')
    const err = await vm.exec('true', { timeoutMs: 3000 }).catch(e => e)
    assert.match(
      String(err),
      /VM bare on host h1: no command channel: the guest runs no qemu-guest-agent \(nothing opened the virtio-serial port org\.qemu\.guest_agent\.0 within 3\.0 s\)/,
    )
    assert.equal((err as { code?: string }).code, 'NO_AGENT')
    await assert.rejects(vm.readFile('/etc/passwd', { timeoutMs: 1000 }), /no command channel/)
    await mgr.destroy('bare')
  })
})
