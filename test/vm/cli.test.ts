// vt doctor, vt setup and vt image through the real binary.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import type { Check } from '../../src/cli/commands/doctor.ts'
import { machine } from '../helpers/requirements.ts'

const root = join(import.meta.dirname, '../..')
function vt(...args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
  delete env.NODE_TEST_CONTEXT
  const r = spawnSync(process.execPath, [join(root, 'bin/vt.js'), ...args], { encoding: 'utf8', env, timeout: 120_000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

test('vt doctor reports each requirement with a fix', () => {
  const r = vt('doctor', '--no-probe', '--json')
  const checks = JSON.parse(r.out) as Check[]
  const get = (name: string) => checks.find(c => c.name === name)
  assert.equal(get('qemu-system-x86_64')?.ok, machine.qemu)
  assert.equal(get('qemu-img')?.ok, machine.qemu)
  assert.equal(get('accelerator kvm')?.detail, 'not probed (--no-probe)')
  assert.ok(get('cache dir'))
  for (const c of checks) if (!c.ok && !c.optional) assert.ok(c.fix, `${c.name} has no fix`)
  assert.equal(r.code, checks.some(c => !c.ok && !c.optional) ? 1 : 0)
  const text = vt('doctor', '--no-probe')
  assert.match(text.out, /qemu-system-x86_64 +/)
  assert.match(text.out, /ready to run VMs|required thing\(s\) missing: run `vt setup`/)
})

test('vt setup --dry-run says what it would install', () => {
  const r = vt('setup', '--dry-run')
  assert.equal(r.code, 0, r.err)
  assert.match(
    r.out,
    /all required Debian packages are installed|would run:\n {2}(sudo )?apt-get update\n {2}(sudo )?apt-get install -y --no-install-recommends /,
  )
})

test('vt image: unknown image is a clear error; list shows the cache', () => {
  const bad = vt('image', 'build', 'nosuch')
  assert.equal(bad.code, 1)
  assert.match(bad.err, /unknown image "nosuch": known images are 'tiny'/)
  const list = vt('image', 'list')
  assert.equal(list.code, 0)
  assert.match(list.out, /tiny-[0-9a-f]{16} {2}kernel |no images in /)
})
