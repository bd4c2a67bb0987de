// A newcomer's path end to end: `npm pack` this repository, `vt init` in a fresh directory, install the tarball
// (its dependencies from the npm registry or npm's cache), and run the generated spec with the installed `vt`
// through the generated `npm test` script. Also checks what the tarball holds (the package.json `files` list).
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { requires } from '../helpers/requirements.ts'
import { packageName, repoRoot, vtBin } from './helpers.ts'

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }
  delete e.NODE_TEST_CONTEXT
  // Under `npm test` these point at vt's own package; the new project is its own.
  for (const k of Object.keys(e)) if (k.startsWith('npm_package_') || k === 'npm_lifecycle_event') delete e[k]
  return e
}

test('vt init makes a project that installs the packed package and runs its spec', async t => {
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vt-init-')))
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }))

  // The tarball: what users need, none of the repository's own tests, benches or CI.
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: repoRoot, encoding: 'utf8', env: env() }),
  )[0] as { filename: string; files: { path: string }[] }
  const inside = packed.files.map(f => f.path)
  for (const needed of ['bin/vt.js', 'src/index.ts', 'agent/main.ts', 'fixtures/index.ts', 'reporters/html.ts'])
    assert.ok(inside.includes(needed), `the package holds ${needed}`)
  assert.ok(inside.includes('src/cli/debian-packages.txt'), 'vt setup reads its list from the package')
  assert.deepEqual(
    inside.filter(f => /^(test|bench|examples|scripts|\.ci)\//.test(f) || f.endsWith('.test.ts')),
    [],
    'no tests, benches, examples or CI scripts in the package',
  )
  const tarball = path.join(tmp, packed.filename)

  const dir = path.join(tmp, 'my-cluster-tests')
  const init = spawnSync(process.execPath, [vtBin, 'init', dir], { cwd: tmp, encoding: 'utf8', env: env() })
  assert.equal(init.status, 0, init.stderr)
  assert.match(init.stdout, /Created a vt project in .*my-cluster-tests/)
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  assert.equal(pkg.name, 'my-cluster-tests')
  assert.equal(pkg.scripts.test, 'vt test')
  for (const f of ['vt.config.ts', 'tests/example.vt.ts', '.gitignore']) assert.ok(fs.existsSync(path.join(dir, f)), f)
  assert.match(fs.readFileSync(path.join(dir, 'vt.config.ts'), 'utf8'), /cluster: \{ hosts: 2 \}/)

  // A second init never overwrites.
  const again = spawnSync(process.execPath, [vtBin, 'init'], { cwd: dir, encoding: 'utf8', env: env() })
  assert.equal(again.status, 1)
  assert.match(again.stderr, /already has package\.json, vt\.config\.ts, tests\/example\.vt\.ts, \.gitignore/)

  const install = spawnSync(
    'npm',
    ['install', '--save-dev', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball],
    { cwd: dir, encoding: 'utf8', env: env(), timeout: 600_000 },
  )
  assert.equal(install.status, 0, install.stdout + install.stderr)
  const installed = path.join(dir, 'node_modules', packageName)
  assert.ok(fs.existsSync(path.join(dir, 'node_modules/.bin/vt')), 'the vt command is installed')
  assert.ok(!fs.existsSync(path.join(installed, 'test')), 'not a checkout: no test/ folder')

  // Installed into a project, `vt setup` leaves out what only vt's own tests need (empty PATH: nothing found).
  const empty = path.join(tmp, 'empty-path')
  fs.mkdirSync(empty)
  const setup = spawnSync(process.execPath, [path.join(installed, 'bin/vt.js'), 'setup', '--dry-run'], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...env(), PATH: empty },
  })
  assert.equal(setup.status, 0, setup.stderr)
  assert.match(setup.stdout, /apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils iproute2/)
  assert.doesNotMatch(setup.stdout, /libxml2-utils|cpio/)

  if (!requires(t, 'qemu')) return
  const run = spawnSync('npm', ['test', '--silent'], { cwd: dir, encoding: 'utf8', env: env(), timeout: 600_000 })
  assert.equal(run.status, 0, run.stdout + run.stderr)
  assert.match(run.stdout, /✓ .*tests\/example\.vt\.ts:\d+:\d+ › both hosts run commands/)
  assert.match(run.stdout, /✓ .*a VM boots on the second host and runs a command/)
  assert.match(run.stdout, /2 passed/)
})
