// The trace option's bad values: in the config (named with its key path and line) and on the command line.
// What it keeps for passing and failing tests is checked with real VMs in test/reporters/htmlBrowser.test.ts.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { project, runVt } from './helpers.ts'

test('trace: an unknown mode in the config or on the command line is a clear error', async t => {
  const p = project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'
export default defineConfig({
  projects: [{ name: 'p', use: { trace: 'always' } }],
})
`,
    'a.vt.ts': `import { test } from 'vt'\ntest('one', async () => {})\n`,
  })
  const bad = await runVt(p, [])
  assert.equal(bad.exitCode, 1, bad.output)
  assert.match(bad.output, /projects\[0\]\.use\.trace/)
  assert.match(bad.output, /off.*on.*retain-on-failure.*on-first-retry/)
  assert.match(bad.output, /vt\.config\.ts:3/)

  p.write({ 'vt.config.ts': `import { defineConfig } from 'vt'\nexport default defineConfig({})\n` })
  const cli = await runVt(p, ['--trace', 'sometimes'])
  assert.equal(cli.exitCode, 1, cli.output)
  assert.match(cli.output, /--trace <mode>.*expected one of off, on, retain-on-failure, on-first-retry/)
  const ok = await runVt(p, ['--trace', 'on'])
  assert.equal(ok.exitCode, 0, ok.output)
})
