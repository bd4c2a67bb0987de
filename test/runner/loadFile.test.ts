import assert from 'node:assert/strict'
import path from 'node:path'
import { after, test } from 'node:test'
import { assignTestIds, cloneSuite, loadTestFile } from '../../src/runner/loadFile.ts'
import { computeTestId, type Suite, TestCase } from '../../src/runner/model.ts'
import { removeProject, writeProject } from './helpers.ts'

const dir = writeProject({
  'a.vt.ts': `import { rootTest as test } from '$TEST'
test('top', async () => {})
test.describe('group @slow', () => {
  test.describe.configure({ mode: 'serial', retries: 2 })
  test.beforeAll(async () => {})
  test.afterEach('cleanup', async () => {})
  test.use({ memory: '512M' })
  test('inner', { tag: '@fast', annotation: { type: 'issue', description: '#1' } }, async () => {})
  test.skip('skipped', async () => {})
  test.fail('fails', async () => {})
  test.only('focused', async () => {})
  test.fixme()
  test.slow(true, 'because')
  test.skip(({ memory }) => memory === '1G', 'too big')
})
test.describe.parallel('par', () => {
  test('p1', () => {})
})
`,
  'nested/syntax.vt.ts': `import { rootTest as test } from '$TEST'
test('ok', () => {})
const x = ;
`,
  'missing.vt.ts': `import { rootTest as test } from '$TEST'
import { helper } from './does-not-exist.ts'
test('ok', () => helper())
`,
  'throws.vt.ts': `import { rootTest as test } from '$TEST'

throw new Error('top level boom')
`,
  'dup.vt.ts': `import { rootTest as test } from '$TEST'
test.describe('d', () => {
  test('same', () => {})
})
test('same', () => {})
test.describe('d', () => {
  test('same', () => {})
})
`,
  'async-describe.vt.ts': `import { rootTest as test } from '$TEST'
test.describe('bad', async () => {
  test('x', () => {})
})
`,
  'bad-test.vt.ts': `import { rootTest as test } from '$TEST'
test('no body')
`,
})
after(() => removeProject(dir))

function find(suite: Suite, title: string): TestCase {
  const t = suite.allTests().find(t => t.title === title)
  assert.ok(t, `test ${title} not found`)
  return t
}

test('builds the file suite with describes, hooks, modifiers and locations', async () => {
  const suite = await loadTestFile(path.join(dir, 'a.vt.ts'), dir)
  assert.equal(suite._loadError, undefined)
  assert.equal(suite.type, 'file')
  assert.equal(suite.title, 'a.vt.ts')
  assert.equal(suite._file, path.join(dir, 'a.vt.ts'))
  const top = find(suite, 'top')
  assert.deepEqual(top.location, { file: path.join(dir, 'a.vt.ts'), line: 2, column: 1 })
  const group = suite.suites[0]
  assert.equal(group.title, 'group @slow')
  assert.equal(group.mode, 'serial')
  assert.equal(group.retries, 2)
  assert.deepEqual(
    group.hooks.map(h => [h.type, h.title, h.location.line]),
    [
      ['beforeAll', 'beforeAll hook', 5],
      ['afterEach', 'cleanup', 6],
    ],
  )
  assert.deepEqual(group.uses[0].fixtures, { memory: '512M' })
  assert.equal(group.uses[0].location.line, 7)
  const inner = find(suite, 'inner')
  assert.deepEqual(inner.tags, ['@slow', '@fast'])
  assert.deepEqual(inner.annotations, [{ type: 'issue', description: '#1' }])
  assert.equal(find(suite, 'skipped').expectedStatus, 'skipped')
  assert.equal(find(suite, 'fails').expectedStatus, 'failed')
  assert.equal(find(suite, 'focused').only, true)
  assert.deepEqual(group.annotations, [{ type: 'fixme' }, { type: 'slow', description: 'because' }])
  assert.equal(group.modifiers.length, 1)
  assert.equal(group.modifiers[0].description, 'too big')
  assert.equal(group.modifiers[0].location.line, 14)
  assert.equal(suite.suites[1].mode, 'parallel')
})

test('loading the same file twice builds the same tree again', async () => {
  const a = await loadTestFile(path.join(dir, 'a.vt.ts'), dir)
  const b = await loadTestFile(path.join(dir, 'a.vt.ts'), dir)
  assert.deepEqual(
    a.allTests().map(t => t.titlePath()),
    b.allTests().map(t => t.titlePath()),
  )
  assert.equal(b.allTests().length, 6)
})

test('assignTestIds uses the title path inside the file', async () => {
  const suite = await loadTestFile(path.join(dir, 'a.vt.ts'), dir)
  assignTestIds(suite, 'proj', 2)
  const inner = find(suite, 'inner')
  assert.equal(inner.id, computeTestId('proj', 'a.vt.ts', ['group @slow', 'inner'], 2))
  assert.equal(inner.repeatEachIndex, 2)
  const ids = new Set(suite.allTests().map(t => t.id))
  assert.equal(ids.size, 6)
  const clone = cloneSuite(suite)
  assignTestIds(clone, 'proj', 2)
  assert.deepEqual(
    clone.allTests().map(t => t.id),
    suite.allTests().map(t => t.id),
  )
  assert.notEqual(clone.allTests()[0], suite.allTests()[0])
})

test('a syntax error is a load error with file:line', async () => {
  const file = path.join(dir, 'nested/syntax.vt.ts')
  const suite = await loadTestFile(file, dir)
  assert.equal(suite.title, 'nested/syntax.vt.ts')
  assert.ok(suite._loadError)
  assert.equal(suite._loadError.location?.file, file)
  assert.equal(suite._loadError.location?.line, 3)
  assert.match(suite._loadError.message, /SyntaxError/)
  assert.match(suite._loadError.snippet ?? '', /> 3 \| const x = ;/)
})

test('a missing import is a load error pointing at the import line', async () => {
  const file = path.join(dir, 'missing.vt.ts')
  const suite = await loadTestFile(file, dir)
  assert.ok(suite._loadError)
  assert.match(suite._loadError.message, /does-not-exist/)
  assert.equal(suite._loadError.location?.line, 2)
})

test('an exception at the top level is a load error with its line', async () => {
  const suite = await loadTestFile(path.join(dir, 'throws.vt.ts'), dir)
  assert.ok(suite._loadError)
  assert.match(suite._loadError.message, /top level boom/)
  assert.equal(suite._loadError.location?.line, 3)
})

test('duplicate titles name both locations', async () => {
  const file = path.join(dir, 'dup.vt.ts')
  const suite = await loadTestFile(file, dir)
  assert.ok(suite._loadError)
  assert.match(suite._loadError.message, /Duplicate test title "d › same"/)
  assert.ok(suite._loadError.message.includes(`${file}:3:3`), suite._loadError.message)
  assert.ok(suite._loadError.message.includes(`${file}:7:3`), suite._loadError.message)
})

test('bad declarations are clear errors with file:line', async () => {
  const a = await loadTestFile(path.join(dir, 'async-describe.vt.ts'), dir)
  assert.match(a._loadError?.message ?? '', /must not be async/)
  assert.match(a._loadError?.message ?? '', /async-describe\.vt\.ts:2:/)
  const b = await loadTestFile(path.join(dir, 'bad-test.vt.ts'), dir)
  assert.match(b._loadError?.message ?? '', /expects a test function \(at .*bad-test\.vt\.ts:2:1\)/)
})

test('test() outside a file being loaded is an error naming the caller', async () => {
  const { rootTest } = await import('../../src/runner/testType.ts')
  assert.throws(
    () => rootTest('x', () => {}),
    (e: Error) => e.message.includes('loadFile.test.ts:') && /top level of a spec file/.test(e.message),
  )
})

test('concurrent loads do not mix declarations', async () => {
  const [a, b] = await Promise.all([
    loadTestFile(path.join(dir, 'a.vt.ts'), dir),
    loadTestFile(path.join(dir, 'dup.vt.ts'), dir),
  ])
  assert.equal(a.allTests().length, 6)
  assert.equal(b.allTests().length, 3)
  assert.ok(TestCase)
})
