// The html report's history: history.json next to index.html keeps the last N runs (this one replacing an entry
// of the same start time, as a second merge-reports of the same shards), is embedded for the viewer, survives a
// broken file with a warning, and the option is checked.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import HtmlReporter, { type HtmlReport } from '../../reporters/html.ts'
import { addRun, type HistoryFile, type HistoryRun } from '../../reporters/htmlHistory.ts'
import { playRun } from './fakeRun.ts'

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-history-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function embedded(dir: string): HtmlReport {
  const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8')
  return JSON.parse(/id="vt-report-data">([\s\S]*?)<\/script>/.exec(html)![1])
}

const readHistory = (dir: string): HistoryFile => JSON.parse(fs.readFileSync(path.join(dir, 'history.json'), 'utf8'))

test('history: each run adds its summary, the same run replaces its entry, the newest N are kept', async t => {
  const dir = tempDir(t)
  await playRun(new HtmlReporter({ outputFolder: dir, open: 'never' }))
  const first = readHistory(dir)
  assert.equal(first.runs.length, 1)
  const run = first.runs[0]
  assert.equal(run.startTime, '2026-01-01T00:00:00.000Z')
  assert.equal(run.status, 'failed')
  assert.deepEqual(run.totals, { passed: 2, failed: 2, flaky: 1, skipped: 1 })
  const report = embedded(dir)
  assert.deepEqual(report.history, first.runs)
  for (const test of report.tests) {
    const entry = run.tests[test.testId]
    assert.ok(entry, `${test.titles.join(' › ')} is in the history`)
    assert.equal(entry[1], Math.round(test.duration))
  }
  const ids = Object.keys(run.tests)
  assert.deepEqual(ids.map(id => run.tests[id][0]).sort(), ['f', 'f', 'k', 'p', 'p', 's'])

  // An earlier run (a day before) in which everything passed; the same run written again replaces itself.
  const earlier: HistoryRun = {
    ...run,
    startTime: '2025-12-31T00:00:00.000Z',
    status: 'passed',
    tests: Object.fromEntries(ids.map(id => [id, ['p', 10] as ['p', number]])),
  }
  fs.writeFileSync(path.join(dir, 'history.json'), JSON.stringify({ version: 1, runs: [earlier, run] }))
  await playRun(new HtmlReporter({ outputFolder: dir, open: 'never' }))
  assert.deepEqual(
    readHistory(dir).runs.map(r => r.startTime),
    ['2025-12-31T00:00:00.000Z', '2026-01-01T00:00:00.000Z'],
  )
  assert.equal(embedded(dir).history.length, 2)

  await playRun(new HtmlReporter({ outputFolder: dir, open: 'never', history: 1 }))
  assert.deepEqual(
    readHistory(dir).runs.map(r => r.startTime),
    ['2026-01-01T00:00:00.000Z'],
  )
  const older = (i: number): HistoryRun => ({
    ...earlier,
    startTime: `2025-01-${String(i).padStart(2, '0')}T00:00:00Z`,
  })
  const kept = addRun([older(3), older(1), older(2)], run, 3)
  assert.deepEqual(
    kept.map(r => r.startTime),
    ['2025-01-02T00:00:00Z', '2025-01-03T00:00:00Z', run.startTime],
  )
})

test('history: 0 keeps none, a broken file is replaced with a warning, a bad option is refused', async t => {
  const dir = tempDir(t)
  await playRun(new HtmlReporter({ outputFolder: dir, open: 'never', history: 0 }))
  assert.equal(fs.existsSync(path.join(dir, 'history.json')), false)
  assert.deepEqual(embedded(dir).history, [])

  fs.writeFileSync(path.join(dir, 'history.json'), '{ not json')
  const warnings: string[] = []
  const write = process.stderr.write
  process.stderr.write = ((chunk: string) => warnings.push(String(chunk)) > 0) as typeof process.stderr.write
  try {
    await playRun(new HtmlReporter({ outputFolder: dir, open: 'never' }))
  } finally {
    process.stderr.write = write
  }
  assert.match(warnings.join(''), /history\.json is not a report history .*: starting a new history/)
  assert.equal(readHistory(dir).runs.length, 1)

  for (const bad of [-1, 1.5, '5', 1001])
    assert.throws(
      () => new HtmlReporter({ outputFolder: dir, history: bad as number }),
      /html reporter: option history must be the number of runs to keep, 0 to 1000 \(0: none\)/,
    )
})
