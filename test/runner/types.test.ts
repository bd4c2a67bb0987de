// Compile-time checks of the spec API's types (tsc --noEmit runs over this file); the runtime part only makes
// sure the declarations are valid calls. Lines marked @ts-expect-error must stay errors.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { TestInfo, TestType, WorkerInfo } from '../../src/runner/testType.ts'
import { rootTest } from '../../src/runner/testType.ts'

interface Db {
  query(sql: string): Promise<number>
}

function declare() {
  const withWorker = rootTest.extend<{ page: string; memory: string }, { db: Db; port: number }>({
    db: [
      async ({ port }, use, workerInfo: WorkerInfo) => {
        const n: number = port + workerInfo.workerIndex
        await use({ query: async () => n })
      },
      { scope: 'worker', timeout: 1000 },
    ],
    port: [8080, { scope: 'worker', option: true }],
    page: async ({ db, memory }, use, testInfo: TestInfo) => {
      await use(`${memory}:${await db.query('x')}:${testInfo.title}`)
    },
    memory: ['256M', { option: true }],
  })
  const t: TestType<{ page: string; memory: string }, { db: Db; port: number }> = withWorker
  t.use({ memory: '1G', port: 9090 })
  // @ts-expect-error memory is a string option
  t.use({ memory: 1 })
  // @ts-expect-error unknown option
  t.use({ nope: true })
  t('typed fixtures', async ({ page, db, port }, testInfo) => {
    const s: string = page
    const n: Promise<number> = db.query(s)
    const p: number = port
    const title: string = testInfo.title
    const value: number = await t.step('returns a value', async () => 42, { box: true, timeout: 100 })
    void [n, p, title, value]
  })
  // @ts-expect-error unknown fixture in a test
  t('unknown', async ({ missing }) => void missing)
  const overridden = withWorker.extend<{ extra: number }>({
    page: async ({ page }, use) => use(`${page}!`),
    extra: async ({ page }, use) => use(page.length),
  })
  overridden('override sees the base value', async ({ extra }) => {
    const n: number = extra
    void n
  })
  t.describe('group', { tag: '@slow' }, () => {
    t.describe.configure({ mode: 'serial', retries: 1, timeout: 1000 })
    t.beforeAll(async ({ db }) => void db)
    // @ts-expect-error beforeAll gets worker fixtures only
    t.afterAll(async ({ page }) => void page)
    t.beforeEach('named', async ({ page }) => void page)
    t.skip(({ memory }) => memory === '1G', 'too much memory')
    t.fixme(process.platform === 'win32', 'no windows')
    t.slow()
    t.fail('declared failing', async () => {})
    t.only('focused', { annotation: { type: 'issue', description: '#1' } }, async () => {})
  })
  t.describe.serial.only('serial only', () => {})
  t.describe.parallel('parallel', () => {})
}

test('the typed declarations are valid calls outside a spec file only at type level', () => {
  assert.throws(declare, /can only be called at the top level of a spec file/)
})
