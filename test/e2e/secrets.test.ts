// End to end: secrets never reach a report. A test prints a registered secret (`redact: [{ env }]`), the
// embedded agent's own token (read from the agent's environment through host.exec) and the config's
// `cluster.token: { value }`, puts them into an error, a step title, an annotation and attachments (body and
// file); every report (list output, JSON, JUnit, blob, HTML, attachment copies) must hold none of them.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { project, runVt, testByPath } from './helpers.ts'

const userSecret = 'user-secret-7c1f9a2b44'
const configToken = 'config-token-5d3e8b1a99'

/** Every file below dir, as [relative path, content]. */
function filesBelow(dir: string): [string, Buffer][] {
  if (!fs.existsSync(dir)) return []
  const out: [string, Buffer][] = []
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const file = path.join(entry.parentPath ?? entry.path, entry.name)
    out.push([path.relative(dir, file), fs.readFileSync(file)])
  }
  return out
}

test('a test that prints tokens and registered secrets leaves none of them in any report', async t => {
  const p = project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'
export default defineConfig({
  redact: [{ env: 'MY_SECRET' }],
  cluster: { hosts: 1, isolation: 'none', token: { value: '${configToken}' } },
})
`,
    'leak.vt.ts': `
import { writeFileSync } from 'node:fs'
import { test } from 'vt'
test('leaks everything it knows', async ({ hosts }, testInfo) => {
  const secret = process.env.MY_SECRET!
  // The agent's token, from the agent's own environment (the exec's parent is the agent).
  const environ = await hosts[0].succeed(['sh', '-c', 'tr "\\\\0" "\\\\n" < /proc/$PPID/environ'])
  const agentToken = /^VT_AGENT_TOKEN=(.*)$/m.exec(environ)?.[1]
  if (!agentToken) throw new Error('no agent token found in ' + environ)
  writeFileSync('agent-token.txt', agentToken)
  const all = [secret, agentToken, '${configToken}'].join(' ')
  console.log('stdout: ' + all)
  console.error('stderr: ' + all)
  process.stdout.write(Buffer.from('binary: ' + all + '\\xff\\n', 'latin1'))
  testInfo.annotations.push({ type: 'note', description: all })
  await testInfo.attach('body', { body: 'body: ' + all })
  writeFileSync('attached.txt', 'file: ' + all)
  await testInfo.attach('file', { path: 'attached.txt' })
  await test.step('step ' + all, async () => {
    throw Object.assign(new Error('error: ' + all), { details: { token: agentToken } })
  })
})
`,
  })
  const r = await runVt(p, [], {
    env: { MY_SECRET: userSecret },
    reporters: ['list', 'blob', 'html'],
    timeoutMs: 90_000,
  })
  assert.equal(r.exitCode, 1, r.output)
  const agentToken = p.read('agent-token.txt')
  assert.match(agentToken, /^[0-9a-f]{64}$/)
  const secrets = [userSecret, agentToken, configToken]
  // The test really did print them: the redaction marker is where they were.
  const result = testByPath(r.json, 'leaks everything it knows').results[0]
  assert.match(result.errors[0].message, /^error: \[redacted\] \[redacted\] \[redacted\]$/)
  assert.ok(result.stdout.some(s => 'text' in s && /stdout: \[redacted\] \[redacted\] \[redacted\]/.test(s.text)))
  assert.ok(result.attachments.some(a => a.name === 'file' && a.path))
  for (const s of secrets) assert.ok(!r.output.includes(s), `terminal output shows ${s}:\n${r.output}`)
  const reports = ['report', 'blob-report', 'vt-report', 'test-results'].flatMap(d =>
    filesBelow(path.join(p.dir, d)).map(([f, data]) => [path.join(d, f), data] as const),
  )
  for (const d of ['report/report.json', 'report/junit.xml', 'vt-report/index.html'])
    assert.ok(
      reports.some(([f]) => f === d),
      `${d} was not written; files: ${reports.map(([f]) => f).join(', ')}`,
    )
  assert.ok(reports.some(([f]) => f.startsWith('blob-report/')))
  assert.ok(
    reports.some(([f]) => f.startsWith('test-results/') && f.includes('file-')),
    'no attachment copy',
  )
  for (const [file, data] of reports) {
    for (const s of secrets) {
      assert.equal(data.indexOf(s), -1, `${file} holds ${s}`)
    }
    // Nor in base64 (attachment bodies and binary output in the JSON and blob reports).
    for (const b64 of data.toString('latin1').match(/[A-Za-z0-9+/]{16,}={0,2}/g) ?? []) {
      const decoded = Buffer.from(b64, 'base64')
      for (const s of secrets) assert.equal(decoded.indexOf(s), -1, `${file} holds ${s} in base64`)
    }
  }
})
