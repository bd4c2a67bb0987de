// The README's spec example is real: it runs with `vt test` and gives the output the README shows.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { project, repoRoot, runVt, testByPath } from './helpers.ts'

test("the README's spec example passes and prints what the README shows", async t => {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8')
  const spec = /```ts\n\/\/ (\S+\.vt\.ts)\n([\s\S]*?)```/.exec(readme)
  assert.ok(spec, 'README has a ```ts block starting with // <name>.vt.ts')
  const [, name, body] = spec
  const p = project(t, { [name]: `// ${name}\n${body}` })
  const r = await runVt(p, ['-j', '1'])
  assert.equal(r.exitCode, 0, r.output)
  assert.equal(testByPath(r.json, 'answers').status, 'expected')
  assert.equal(testByPath(r.json, 'waits for a value').status, 'expected')
  // The lines the README shows, up to durations.
  const shown = /`npx vt test` prints[^\n]*\n\n```\n([\s\S]*?)```/.exec(readme)![1]
  for (const line of shown.split('\n').filter(l => l.includes('✓'))) {
    const pattern = line
      .trim()
      .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
      .replace(/\\\(\d+ms\\\)/, '\\(\\d+ms\\)')
    assert.match(r.stdout, new RegExp(pattern), `README line "${line.trim()}"`)
  }
  assert.match(r.stdout, /2 passed \(/)
})
