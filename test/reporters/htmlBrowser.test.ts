// The html report in a real browser (Debian's Chromium, driven headless by playwright-core; no browser
// download): two real `vt test` runs on an embedded two-host cluster, the second migrating a VM and then failing
// on purpose. In the report Chromium shows the run history, the failed test expands to its migration charts and
// its own history, and `--trace on` kept the console log of a passing test (the first run's default did not).
// The runs also show the list reporter's progress lines (boot, migration) in a log.
import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { chromium } from 'playwright-core'
import { allTests, project, runVt } from '../e2e/helpers.ts'
import { requires } from '../helpers/requirements.ts'

const spec = `import { expect, test } from 'vt'
test('boots', async ({ vm }) => {
  expect(await vm.succeed('echo up')).toBe('up\\n')
})
test('migrates, then fails on purpose', async ({ cluster, vm }) => {
  const result = await vm.migrate({ to: cluster.hosts[1] })
  expect(result.samples.length).toBeGreaterThan(1)
  expect(result.downtimeMs).toBe(-1)
})
`

test('html report in Chromium: history, a failed test with migration charts, logs kept by trace', {
  timeout: 600_000,
}, async t => {
  if (!requires(t, 'qemu', 'chromium')) return
  const p = project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'
export default defineConfig({ timeout: 180_000, projects: [{ name: 'two', cluster: { hosts: 2 } }] })
`,
    'report.vt.ts': spec,
  })
  const first = await runVt(p, ['--grep', 'boots'], { reporters: ['list', 'html'], timeoutMs: 300_000 })
  assert.equal(first.exitCode, 0, first.output)
  const attachments = (r: typeof first, title: string) =>
    allTests(r.json)
      .find(x => x.title.startsWith(title))
      ?.results[0].attachments.map(a => a.name) ?? []
  assert.deepEqual(attachments(first, 'boots'), [], 'by default a passing test keeps no VM logs')
  assert.match(first.stdout, /⋯ .*boots.*booting vm\S* on /, 'the boot is shown as progress')

  const second = await runVt(p, ['--trace', 'on'], { reporters: ['list', 'html'], timeoutMs: 300_000 })
  assert.equal(second.exitCode, 1, second.output)
  assert.ok(
    attachments(second, 'boots').some(n => n.endsWith('-console.log')),
    `--trace on keeps the console log of a passing test: ${attachments(second, 'boots')}`,
  )
  assert.match(second.stdout, /⋯ .*migrates.*› migrate vm\S*: \S+ → \S+: (precopy|migrate)/, 'migration progress')

  t.diagnostic(`runs: ${first.durationMs} ms, ${second.durationMs} ms`)
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
  t.after(() => browser.close())
  const page = await browser.newPage()
  const problems: string[] = []
  page.on('pageerror', e => problems.push(`page error: ${e.message}`))
  page.on('console', m => m.type() === 'error' && problems.push(`console: ${m.text()}`))
  page.on('request', r => !/^(file|data):/.test(r.url()) && problems.push(`fetched ${r.url()}`))
  await page.goto(pathToFileURL(path.join(p.dir, 'vt-report', 'index.html')).href)

  // Per run the totals: two runs, this one (1 passed, 1 failed) first in the table.
  await page.locator('.history table.runs').waitFor()
  assert.equal(await page.locator('.runs-chart .run-bar').count(), 2)
  const rows = page.locator('table.runs tbody tr')
  assert.equal(await rows.count(), 2)
  assert.match((await rows.nth(0).innerText()).replace(/\s+/g, ' '), /\(this run\) failed 1 1 0 0/)
  assert.match((await rows.nth(1).innerText()).replace(/\s+/g, ' '), /passed 1 0 0 0/)

  // The failed test: its trend (not run, then failed), then expanded: history and the migration's charts.
  const failed = page.locator('details.test.o-failed', { hasText: 'migrates, then fails on purpose' })
  assert.deepEqual(await failed.locator('.trend .tr').evaluateAll(els => els.map(e => e.className)), [
    'tr t-none',
    'tr t-f',
  ])
  await failed.locator('summary').click()
  await failed.locator('.migration-charts').waitFor()
  const charts = failed.locator('.migration-charts svg.chart')
  // The dirty rate is charted when QEMU measured one (a dirty sync at least 1 s after the previous), else a note.
  const titles = await failed.locator('.migration-charts h6').allInnerTexts()
  assert.deepEqual(titles.slice(0, 2), ['Remaining RAM', 'Throughput'])
  assert.equal(await charts.count(), titles.length)
  assert.match(await failed.locator('.migration-charts').innerText(), /Dirty rate/)
  assert.ok(await charts.first().locator('polyline').isVisible(), 'the remaining RAM is drawn as a line')
  assert.match(await failed.locator('.migration-facts').innerText(), /downtime\s+\d+ ms/)
  assert.match(await failed.locator('.test-history').innerText(), /1 failed in the last 2 runs \(1 without this test\)/)
  assert.equal(await failed.locator('.test-history svg.chart circle').count(), 1)

  // The passing test kept its console log under --trace on; its trend shows two passes.
  const boots = page.locator('details.test', { hasText: 'boots' })
  assert.deepEqual(await boots.locator('.trend .tr').evaluateAll(els => els.map(e => e.className)), [
    'tr t-p',
    'tr t-p',
  ])
  await boots.locator('summary').click()
  await boots.locator('.attachment-name', { hasText: '-console.log' }).waitFor()
  assert.equal(await boots.locator('.test-history svg.chart circle').count(), 2)
  assert.deepEqual(problems, [])
})
