// End to end: long work reports progress from a step (apiStep's step.progress, reportProgress), the list
// reporter shows it as sparse lines in a log and on the test's own updating line on a terminal (the line
// reporter on its status line), and a bad report is refused with the field named.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { project, runVt, testByPath, vtBin } from './helpers.ts'

const spec = `import { apiStep, expect, reportProgress, test } from 'vt'
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))
test('copies', async () => {
  reportProgress({ message: 'warming up' })
  await apiStep('copy image', async step => {
    for (const part of [0, 1, 2, 3, 4]) {
      step.progress({ message: 'copying', bytes: part * 256 * 1024, totalBytes: 1024 * 1024 })
      await sleep(300)
    }
  })
})
test('bad progress', async () => {
  await apiStep('refused', async step => {
    expect(() => step.progress({ percent: 120 })).toThrow('progress: percent must be a number from 0 to 100, got 120')
    expect(() => reportProgress({ bytes: -1 })).toThrow('progress: bytes must be a number >= 0, got -1')
  })
})
`

test('progress: sparse lines in a log, the step and its numbers in the json report untouched', async t => {
  const p = project(t, { 'a.vt.ts': spec })
  const r = await runVt(p, ['-j', '1'])
  assert.equal(r.exitCode, 0, r.output)
  const lines = r.stdout.split('\n').filter(l => l.includes('⋯'))
  assert.ok(
    lines.some(l => /a\.vt\.ts:3:1 › copies: warming up/.test(l)),
    `test-level progress:\n${r.stdout}`,
  )
  assert.ok(
    lines.some(l => /copies › copy image: copying 50% \(512\.0 KiB\/1\.0 MiB\)/.test(l)),
    `a quarter passed:\n${r.stdout}`,
  )
  assert.ok(
    lines.some(l => /copy image: copying 100% \(1\.0 MiB\/1\.0 MiB\)/.test(l)),
    `the last report:\n${r.stdout}`,
  )
  assert.ok(lines.length <= 8, `sparse, not one line per report:\n${lines.join('\n')}`)
  assert.equal(testByPath(r.json, 'bad progress').results[0].status, 'passed')
})

test('progress: on a terminal the test line shows the running step, percent and bytes', async t => {
  const p = project(t, { 'a.vt.ts': spec })
  const r = spawnSync('script', ['-qec', `${process.execPath} ${vtBin} test -j 1 --reporter list`, '/dev/null'], {
    cwd: p.dir,
    encoding: 'utf8',
    env: { ...process.env, COLUMNS: '160', LINES: '40', FORCE_COLOR: '', NO_COLOR: '', TERM: 'xterm', CI: '' },
    timeout: 60_000,
  })
  if (r.error) return t.skip(`script(1) is not usable here: ${r.error.message}`)
  assert.equal(r.status, 0, r.stdout)
  const plain = r.stdout.replace(/\u001b\[[0-9;]*m/g, '')
  assert.match(plain, /\u001b\[\d+A\r\u001b\[2K.*copies › copy image copying 25% \(256\.0 KiB\/1\.0 MiB\)/)
  assert.doesNotMatch(plain, /⋯/, 'no log lines on a terminal')
  assert.match(plain, /✓.*copies/)

  const line = spawnSync('script', ['-qec', `${process.execPath} ${vtBin} test -j 1 --reporter line`, '/dev/null'], {
    cwd: p.dir,
    encoding: 'utf8',
    env: { ...process.env, COLUMNS: '160', LINES: '40', FORCE_COLOR: '', NO_COLOR: '', TERM: 'xterm', CI: '' },
    timeout: 60_000,
  })
  assert.equal(line.status, 0, line.stdout)
  assert.match(
    line.stdout.replace(/\u001b\[[0-9;]*m/g, ''),
    /\[0\/2\] .*copies › copy image copying 50% \(512\.0 KiB\/1\.0 MiB\)/,
  )
})
