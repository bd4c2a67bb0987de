// End to end: `vt test --reporter html` on a small failing project writes a report folder, and the real
// `vt show-report` serves it on 127.0.0.1 (and nothing outside it).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { test } from 'node:test'
import type { HtmlReport } from '../../reporters/html.ts'
import { project, runVt, vtBin } from './helpers.ts'

const spec = `
import { test, expect } from 'vt'
import { writeFileSync } from 'node:fs'
test('passes', async () => {
  console.log('hello from passes')
})
test('fails </script> on purpose', async () => {
  await test.step('outer', async () => {
    await test.step('inner', async () => {
      expect(6 / 3).toBe(3)
    })
  })
})
test('attaches', async () => {
  const file = test.info().outputPath('console.txt')
  writeFileSync(file, 'console line 1\\n')
  await test.info().attach('console', { path: file, contentType: 'text/plain' })
  await test.info().attach('note', { body: 'inline note', contentType: 'text/plain' })
  expect(1).toBe(2)
})
`

function embedded(html: string): HtmlReport {
  const m = /<script type="application\/json" id="vt-report-data">([\s\S]*?)<\/script>/.exec(html)
  assert.ok(m, 'report data present')
  return JSON.parse(m[1])
}

test('vt test --reporter html writes a report folder for a failing run', async t => {
  const p = project(t, { 'math.vt.ts': spec })
  const outDir = path.join(p.dir, 'my-report')
  const r = await runVt(p, ['--retries', '1', '-j', '1'], {
    reporters: ['list', 'html'],
    env: { VT_HTML_OUTPUT_DIR: outDir, CI: '' },
  })
  assert.equal(r.exitCode, 1, r.output)
  assert.match(r.stdout, /To open the report: npx vt show-report my-report/, 'on-failure prints the hint')
  assert.ok(!p.exists('vt-report'), 'VT_HTML_OUTPUT_DIR wins over the default')
  const report = embedded(fs.readFileSync(path.join(outDir, 'index.html'), 'utf8'))
  assert.equal(report.tests.length, 3)
  assert.deepEqual(
    { expected: report.stats.expected, unexpected: report.stats.unexpected },
    { expected: 1, unexpected: 2 },
  )
  const byTitle = (title: string) => report.tests.find(x => x.titles.at(-1) === title)!
  assert.match(byTitle('passes').results[0].stdout, /hello from passes/)
  const fails = byTitle('fails </script> on purpose')
  assert.equal(fails.file, 'math.vt.ts')
  assert.equal(fails.results.length, 2, 'both attempts')
  assert.match(fails.results[1].errors[0].message, /Expected: 3/)
  assert.match(fails.results[1].errors[0].snippet ?? '', /expect\(6 \/ 3\)\.toBe\(3\)/)
  const outer = fails.results[0].steps.find(s => s.title === 'outer')
  assert.ok(outer?.error, 'failed step marked')
  assert.equal(outer.steps?.find(s => s.title === 'inner')?.error !== undefined, true)
  const attachments = byTitle('attaches').results[0].attachments
  const consoleFile = attachments.find(a => a.name === 'console')!
  assert.equal(fs.readFileSync(path.join(outDir, consoleFile.path!), 'utf8'), 'console line 1\n')
  assert.equal(consoleFile.text, 'console line 1\n')
  assert.equal(attachments.find(a => a.name === 'note')?.text, 'inline note')
})

/** GET over loopback; the raw path is sent as given (no client-side normalization of `..`). */
function get(port: number, rawPath: string): Promise<{ status: number; body: string; type?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: 'GET' }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', d => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** Runs a show-report that is expected to exit by itself (bad input). */
async function runShowReport(cwd: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [vtBin, 'show-report', ...args], {
    cwd,
    env: { ...process.env, NODE_TEST_CONTEXT: undefined },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', d => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const code = await new Promise<number | null>(resolve => child.on('exit', c => resolve(c)))
  clearTimeout(timer)
  return { code, stderr }
}

test('vt show-report serves the folder on 127.0.0.1 and refuses paths outside it', async t => {
  const p = project(t, {
    'report/index.html': '<!doctype html><title>r</title>',
    'report/data/abc.txt': 'attachment text',
    'secret.txt': 'TOP SECRET',
    'empty/readme.txt': 'not a report',
  })
  const env = { ...process.env, NODE_TEST_CONTEXT: undefined }
  const child = spawn(process.execPath, [vtBin, 'show-report', 'report', '--port', '0'], {
    cwd: p.dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.after(() => child.kill('SIGKILL'))
  let out = ''
  child.stderr.setEncoding('utf8').on('data', d => (out += d))
  const url = await new Promise<URL>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed in 30s:\n${out}`)), 30_000)
    child.stdout.setEncoding('utf8').on('data', d => {
      out += d
      const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(new URL(m[0]))
      }
    })
    child.on('exit', code => reject(new Error(`show-report exited with ${code}:\n${out}`)))
  })
  const port = Number(url.port)
  assert.notEqual(port, 9323, '--port 0 picks a free port')
  const index = await get(port, '/')
  assert.equal(index.status, 200)
  assert.match(index.type ?? '', /text\/html/)
  assert.match(index.body, /<title>r<\/title>/)
  const data = await get(port, '/data/abc.txt')
  assert.equal(data.status, 200)
  assert.equal(data.body, 'attachment text')
  for (const evil of ['/../secret.txt', '/data/../../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt']) {
    const r = await get(port, evil)
    assert.equal(r.status, 403, `${evil} refused`)
    assert.ok(!r.body.includes('TOP SECRET'), evil)
  }
  fs.symlinkSync(path.join(p.dir, 'secret.txt'), path.join(p.dir, 'report', 'link.txt'))
  assert.equal((await get(port, '/link.txt')).status, 403, 'a symlink out of the folder is refused')
  assert.equal((await get(port, '/nope.txt')).status, 404)

  // The port taken: a clear error rather than a stack.
  const busy = await runShowReport(p.dir, ['report', '--port', String(port)])
  assert.equal(busy.code, 1)
  assert.match(
    busy.stderr,
    new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: port ${port} is in use \\(try --port 0\\)`),
  )

  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  child.kill('SIGINT')
  assert.equal(await exited, 0, 'Ctrl-C stops it cleanly')

  // A folder without index.html is a clear error.
  const bad = await runShowReport(p.dir, ['empty', '--port', '0'])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /empty has no index\.html; is it a folder written by the html reporter\?/)
})
