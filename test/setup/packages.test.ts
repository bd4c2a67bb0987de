// The one list of Debian packages (src/cli/debian-packages.txt): .ci/run installs exactly it, `vt setup` on a
// machine that has none of it installs all of it (so the README's `npm ci && npx vt setup` prepares `npm test`),
// `vt doctor` checks each, and every tool the tests run by name comes from it.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import type { Check } from '../../src/cli/commands/doctor.ts'
import { debianPackages, packagesFile, parsePackages } from '../../src/cli/debianPackages.ts'

const root = path.join(import.meta.dirname, '../..')
const list = debianPackages()
const names = (need?: (n: string) => boolean) => list.filter(p => !need || need(p.need)).map(p => p.name)

function vt(args: string[], env: NodeJS.ProcessEnv = {}) {
  const full: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...env }
  delete full.NODE_TEST_CONTEXT
  const r = spawnSync(process.execPath, [path.join(root, 'bin/vt.js'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: full,
    timeout: 60_000,
  })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

test('a malformed line of the list is an error naming file:line', () => {
  assert.throws(() => parsePackages('qemu-utils qemu-img vms ok\nnftables nft sometimes why\n', 'l.txt'), {
    message: 'l.txt:2: nftables: who needs it must be one of vms, optional, tests, got "sometimes"',
  })
  assert.throws(() => parsePackages('# c\ncpio cpio tests\n', 'l.txt'), {
    message: 'l.txt:2: cpio: say why it is needed',
  })
  assert.throws(() => parsePackages('cpio cpio tests a\ncpio cpio tests b\n', 'l.txt'), /l.txt:2: cpio is listed twice/)
  assert.deepEqual(parsePackages('iproute2  ip,ss  vms  namespaces # and faults\n'), [
    { name: 'iproute2', commands: ['ip', 'ss'], need: 'vms', why: 'namespaces' },
  ])
})

test('.ci/run installs exactly the list, and no other Debian package but Node', () => {
  const ci = readFileSync(path.join(root, '.ci/run'), 'utf8')
  const line = ci.split('\n').find(l => l.startsWith('packages='))
  assert.ok(line, '.ci/run sets packages= from the list')
  const got = execFileSync('bash', ['-c', `${line}\nprintf '%s' "$packages"`], { cwd: root, encoding: 'utf8' })
  assert.deepEqual(got.trim().split(/\s+/), names())
  const installs = ci.split('\n').filter(l => /apt-get install/.test(l) && !l.trim().startsWith('#'))
  assert.deepEqual(
    installs.map(l => l.replace(/^.*apt-get install -y --no-install-recommends /, '').trim()),
    ['$packages', 'nodejs npm'],
    'every other apt-get install in .ci/run belongs in src/cli/debian-packages.txt',
  )
})

test("on a machine with none of it, the README's `vt setup` would install the whole list", t => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8')
  assert.match(readme, /npm ci && npx vt setup/, 'the README quick start runs vt setup after npm ci')
  // An empty PATH: no package's command is found, as on a fresh machine.
  const empty = mkdtempSync(path.join(os.tmpdir(), 'vt-empty-path-'))
  t.after(() => rmSync(empty, { recursive: true, force: true }))
  const installLine = (out: string) => /apt-get install -y --no-install-recommends (.*)\n/.exec(out)?.[1].split(' ')
  const all = vt(['setup', '--dry-run'], { PATH: empty })
  assert.equal(all.code, 0, all.err)
  assert.match(all.out, /^would run:\n {2}(sudo )?apt-get update\n/)
  assert.deepEqual(installLine(all.out), names(), 'in a checkout: everything, as .ci/run')
  const user = vt(['setup', '--dry-run', '--no-tests'], { PATH: empty })
  assert.deepEqual(
    installLine(user.out),
    names(n => n !== 'tests'),
    '--no-tests: only what VMs need',
  )
})

test('vt doctor checks every package of the list; only the ones VMs need are required', () => {
  const r = vt(['doctor', '--no-probe', '--json'])
  const checks = JSON.parse(r.out) as Check[]
  for (const p of list) {
    const c = checks.find(c => c.packages?.includes(p.name))
    assert.ok(c, `a check for ${p.name}`)
    assert.equal(c.name, p.commands[0] === '-' ? p.name : p.commands[0])
    assert.equal(!!c.optional, p.need !== 'vms', `${p.name} is ${p.need}`)
  }
})

test('every tool the tests and scripts run by name comes from a listed package or from Debian essentials', () => {
  // Essential: present on every Debian system (coreutils, dash, bash, procps-free basics).
  // Node's own: npm comes with Node (.ci/run installs both).
  const essential = new Set([
    'node',
    'npm',
    'sh',
    'bash',
    'true',
    'false',
    'sleep',
    'mkdir',
    'mkfifo',
    'mknod',
    'ls',
    'dd',
    'echo',
    'cat',
    'kill',
  ])
  const provided = new Set(list.flatMap(p => p.commands))
  const files: string[] = []
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name)
      if (e.isDirectory() && e.name !== 'node_modules') walk(full)
      else if (/\.(ts|mjs)$/.test(e.name)) files.push(full)
    }
  }
  walk(path.join(root, 'test'))
  walk(path.join(root, 'scripts'))
  const missing: string[] = []
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(/\b(?:spawnSync|execFileSync|execFile|spawn)\(\s*'([\w.+-]+)'/g)) {
      if (!essential.has(m[1]) && !provided.has(m[1])) missing.push(`${path.relative(root, file)}: ${m[1]}`)
    }
  }
  assert.deepEqual(missing, [], `add the package providing these to ${path.relative(root, packagesFile)}`)
})
