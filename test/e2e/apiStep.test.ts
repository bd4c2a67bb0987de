// End to end: apiStep, the one way domain APIs (Vm, Host, migrate, faults, ...) appear as steps, is located at
// the first caller outside vt's own modules, nests, attaches to the test, fails with its body, and runs plainly outside
// a test.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { project, runVt, testByPath } from './helpers.ts'

test('apiStep: a step at the calling spec line, nested, with attachments; errors fail it; outside a test it just runs', async t => {
  const p = project(t, {
    'helpers.ts': `
import { apiStep } from 'vt'
// A domain helper of the user's own: its steps point at the spec line that called it.
export function deploy(name: string) {
  return apiStep('deploy ' + name, async step => {
    await apiStep('copy files', async () => {})
    await step.attach('plan', { body: 'plan of ' + name, contentType: 'text/plain' })
    return name.length
  })
}
export const outside = apiStep('not in a test', () => 42)
`,
    'a.vt.ts': `import { apiStep, expect, test } from 'vt'
import { deploy, outside } from './helpers.ts'
test('steps', async () => {
  expect(await outside).toBe(42)
  expect(await deploy('web')).toBe(3)
})
test('fails', async () => {
  await apiStep('broken', () => { throw new Error('no disk') })
})
`,
  })
  const r = await runVt(p, ['--reporter', 'json'])
  assert.equal(r.exitCode, 1, r.output)
  const ok = testByPath(r.json, 'steps').results[0]
  const deploy = ok.steps.find(s => s.title === 'deploy web')
  assert.ok(deploy, JSON.stringify(ok.steps.map(s => s.title)))
  // The user's own helper is user code: its step points at its apiStep call (vt's modules are skipped instead).
  assert.equal(deploy.location?.file.endsWith('helpers.ts'), true, JSON.stringify(deploy.location))
  assert.equal(deploy.location?.line, 5)
  assert.deepEqual(
    deploy.steps?.map(s => s.title),
    ['copy files', 'attach "plan"'],
  )
  assert.ok(ok.attachments.some(a => a.name === 'plan'))
  const failed = testByPath(r.json, 'fails').results[0]
  const broken = failed.steps.find(s => s.title === 'broken')
  assert.match(String(broken?.error?.message), /no disk/)
  assert.equal(broken?.location?.line, 8)
  assert.match(String(failed.error?.message), /no disk/)
})
