// scripts/check-deps.mjs: the import boundaries between controller, host and shared code, and import cycles.
// Runs the real script on small trees shaped like the repository, and on the repository itself.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const script = fileURLToPath(new URL('../../scripts/check-deps.mjs', import.meta.url))

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(os.tmpdir(), 'vt-deps-'))
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, f)), { recursive: true })
    writeFileSync(join(dir, f), text)
  }
  return dir
}

function run(root?: string) {
  const r = spawnSync(process.execPath, [script, ...(root ? ['--root', root] : [])], { encoding: 'utf8' })
  return { code: r.status, out: r.stdout + r.stderr }
}

test('the repository keeps its boundaries and has no import cycle', () => {
  const r = run()
  assert.equal(r.code, 0, r.out)
})

test('controller code importing host code fails, naming both modules and the rule', () => {
  const dir = tree({
    'agent/qmp/client.ts': 'export const x = 1\n',
    'src/migration/migrate.ts': "import { x } from '../../agent/qmp/client.ts'\nexport const y = x\n",
  })
  try {
    const r = run(dir)
    assert.equal(r.code, 1)
    assert.match(r.out, /src\/migration\/migrate\.ts imports agent\/qmp\/client\.ts/)
    assert.match(r.out, /src\/\* must not import agent\/\*/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('host code importing controller code fails, type-only imports too', () => {
  const dir = tree({
    'src/cluster/host.ts': 'export interface Host { name: string }\n',
    'src/protocol/vm.ts': 'export interface VmSpec { name: string }\n',
    'agent/vm/manager.ts':
      "import type { Host } from '../../src/cluster/host.ts'\nimport type { VmSpec } from '../../src/protocol/vm.ts'\nexport type X = [Host, VmSpec]\n",
  })
  try {
    const r = run(dir)
    assert.equal(r.code, 1)
    assert.match(r.out, /agent\/vm\/manager\.ts imports src\/cluster\/host\.ts/)
    assert.doesNotMatch(r.out, /imports src\/protocol\/vm\.ts/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the shared contract may not import either side; an import cycle fails', () => {
  const dir = tree({
    'src/protocol/migration.ts': "import type { R } from '../migration/report.ts'\nexport type T = R\n",
    'src/migration/report.ts': 'export interface R { ok: boolean }\n',
    'src/runner/model.ts': "import type { B } from './reporterApi.ts'\nexport interface A { b?: B }\n",
    'src/runner/reporterApi.ts': "import type { A } from './model.ts'\nexport interface B { a?: A }\n",
  })
  try {
    const r = run(dir)
    assert.equal(r.code, 1)
    assert.match(r.out, /src\/protocol\/migration\.ts imports src\/migration\/report\.ts/)
    assert.match(r.out, /import cycle: src\/runner\/model\.ts ↔ src\/runner\/reporterApi\.ts/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
