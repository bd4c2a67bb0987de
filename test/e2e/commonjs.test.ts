// The same TypeScript specs, config and fixture module run alike in a project with "type": "module", one with
// "type": "commonjs" (what `npm init -y` writes) and one with no "type": the user's .ts files load as ES modules
// in all of them, so they share the runner's module state (a second copy of vt would collect no tests).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { allTests, packageName, project, runVt } from './helpers.ts'

const files = {
  'vt.config.ts': `import { defineConfig } from '${packageName}'\nexport default defineConfig({ workers: 1 })\n`,
  'fixtures.ts': `import { test as base } from '${packageName}'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
let setups = 0
export const test = base.extend<{ greeting: string }, { counter: () => number }>({
  counter: [async ({}, use) => { setups++; await use(() => setups) }, { scope: 'worker' }],
  greeting: async ({}, use) => { await use(readFileSync(join(import.meta.dirname, 'greeting.txt'), 'utf8')) },
})
export { expect } from '${packageName}'
`,
  'greeting.txt': 'hello',
  'a.vt.ts': `import { expect, test } from './fixtures.ts'
test.describe('suite', () => {
  test('reads a file next to the spec', async ({ greeting }) => {
    await test.step('check', () => expect(greeting).toBe('hello'))
  })
  test('shares the worker fixture', async ({ counter }) => {
    expect(counter()).toBe(1)
    expect(test.info().titlePath.at(-1)).toBe('shares the worker fixture')
  })
})
`,
  'b.vt.ts': `import { expect, test } from './fixtures'\ntest('extensionless import', async ({ counter }) => expect(counter()).toBe(1))\n`,
}

const kinds = {
  module: '{ "name": "esm", "private": true, "type": "module" }\n',
  commonjs: '{ "name": "cjs", "version": "1.0.0", "main": "index.js", "type": "commonjs" }\n',
  'no type': '{ "name": "plain", "version": "1.0.0", "main": "index.js" }\n',
}

test('TypeScript specs run the same in ESM, CommonJS and untyped packages', async t => {
  const outcomes: Record<string, string[]> = {}
  for (const [kind, pkg] of Object.entries(kinds)) {
    const p = project(t, { ...files, 'package.json': pkg })
    const r = await runVt(p, [])
    assert.equal(r.exitCode, 0, `${kind}: ${r.output}`)
    outcomes[kind] = allTests(r.json).map(x => `${x.file} › ${x.path}: ${x.status}`)
  }
  assert.deepEqual(outcomes.module, [
    'a.vt.ts › suite › reads a file next to the spec: expected',
    'a.vt.ts › suite › shares the worker fixture: expected',
    'b.vt.ts › extensionless import: expected',
  ])
  assert.deepEqual(outcomes.commonjs, outcomes.module)
  assert.deepEqual(outcomes['no type'], outcomes.module)
})
