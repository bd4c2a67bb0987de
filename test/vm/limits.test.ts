// VM limits against real QEMU: memory below what the image needs is refused up front, a guest whose kernel
// dies before it is ready says why (its last words), and socket paths stay short whatever the VM's name and
// the state dir's length.
import assert from 'node:assert/strict'
import { existsSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { VmManager } from '../../agent/vm/manager.ts'
import { MAX_SOCKET_PATH, socketRoot } from '../../agent/vm/sockets.ts'
import { machine } from '../helpers/requirements.ts'
import { qemuProcesses, tempDir, waitFor } from './helpers.ts'

// A state dir far longer than a socket path may be (sun_path is 108 bytes).
const base = tempDir('vt-vm-limits-')
const dir = join(base, 'a-very-long-agent-state-directory-'.repeat(5), 'sessions', 'abcdef0123456789')
// Every path the manager records for the reaper: all of them must be gone after a failed create or a destroy.
const tracked: string[] = []
const mgr = new VmManager({
  host: 'h1',
  dir,
  hooks: {
    track: async r => {
      if (r.kind === 'path') tracked.push(r.path)
      return String(tracked.length)
    },
  },
})

after(async () => {
  await mgr.destroyAll()
  rmSync(base, { recursive: true, force: true })
})

describe('VM limits', { skip: !machine.qemu && !process.env.CI && 'needs qemu' }, () => {
  test('memory below what the image needs is refused, naming the minimum', async () => {
    await assert.rejects(
      mgr.create({ name: 'small', memory: 64, accel: 'tcg' }),
      /VM small on host h1: memory 64 MiB is too little for the tiny image, which needs at least 96 MiB; ask for memory: "96M" or more$/,
    )
    // Refused before any boot: no VM dir, no QEMU.
    assert.deepEqual(qemuProcesses(join(dir, 'vms', 'small')), [])
    assert.equal(existsSync(join(dir, 'vms', 'small')), false)
  })

  test('a kernel that panics before the guest is ready: the error says why', async () => {
    await assert.rejects(
      mgr.create({ name: 'panics', accel: 'tcg', append: 'rdinit=/no-such-init init=/no-such-init' }),
      (e: Error) =>
        /^VM panics on host h1: QEMU exited before the guest was ready: QEMU exited with code 0; the guest kernel panicked: VFS: Unable to mount root fs/.test(
          e.message,
        ) && /Console tail:\n/.test(e.message),
    )
    assert.deepEqual(qemuProcesses(join(dir, 'vms', 'panics')), [])
    assert.ok(
      tracked.some(p => p.startsWith(`${socketRoot()}/`)),
      'the socket dir is recorded for the reaper',
    )
    for (const p of tracked) assert.equal(existsSync(p), false, `${p} left behind`)
  })

  test('a 64-character name under a long state dir boots; every socket path is short', async () => {
    assert.ok(dir.length > 200)
    const name = `vm-${'n'.repeat(61)}`
    assert.equal(name.length, 64)
    const port = `port-${'p'.repeat(50)}`
    const info = await mgr.create({ name, accel: 'tcg', consoles: [{ name: port }] })
    const r = await mgr.get(name).exec('echo hello from a long name')
    assert.equal(r.stdout.toString(), 'hello from a long name\n')
    const sockets = [info.qmpSocket, ...Object.values(info.consoles)]
    for (const s of sockets) {
      assert.ok(s.length <= MAX_SOCKET_PATH, `${s} is ${s.length} bytes`)
      assert.ok(s.startsWith(`${socketRoot()}/`), s)
    }
    // The extra console port's socket is QEMU's and answers.
    await new Promise<void>((resolve, reject) => {
      const c = connect(info.consoles[port], () => {
        c.destroy()
        resolve()
      })
      c.on('error', reject)
    })
    const sockDir = join(info.qmpSocket, '..')
    await mgr.destroy(name)
    assert.equal(existsSync(sockDir), false, 'the socket dir goes with the VM')
    assert.ok(await waitFor(() => qemuProcesses(dir).length === 0, 5000))
    for (const p of tracked) assert.equal(existsSync(p), false, `${p} left behind`)
  })
})
