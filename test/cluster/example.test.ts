// The repository's own `two-host` project (vt.config.ts + examples/hosts.vt.ts) through the real `vt test`:
// both hosts run commands, and with namespaces they show distinct addresses. Nothing survives the run.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { repoRoot, vtBin } from '../e2e/helpers.ts'
import { machine } from '../helpers/requirements.ts'

test('examples/hosts.vt.ts passes in the two-host project', async () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'vt-example-'))
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, VT_JSON_OUTPUT_FILE: join(dir, 'report.json'), NO_COLOR: '1' }
    delete env.NODE_TEST_CONTEXT
    const child = spawn(
      process.execPath,
      [
        vtBin,
        'test',
        'examples/hosts.vt.ts',
        '--project',
        'two-host',
        '--reporter',
        'list,json',
        '--output',
        join(dir, 'results'),
      ],
      { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let output = ''
    child.stdout.on('data', d => (output += d))
    child.stderr.on('data', d => (output += d))
    const code = await new Promise<number | null>(resolve => child.on('close', c => resolve(c)))
    assert.equal(code, 0, output)
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'))
    assert.equal(report.stats.expected, 4, output)
    const lines = output.split('\n').filter(l => /^host\d: /.test(l))
    assert.equal(lines.length, 2, output)
    const addresses = lines.map(l => l.split(' ')[1])
    if (machine.netns) {
      assert.notEqual(addresses[0], addresses[1])
      for (const a of addresses) assert.match(a, /^10\.213\./)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
