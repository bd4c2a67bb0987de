// Drives the real worker process over its IPC channel, as the dispatcher does.
import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import path from 'node:path'
import { after, test } from 'node:test'
import type { MainToWorker, OutputMessage, WorkerToMain } from '../../src/runner/ipc.ts'
import { testIds } from './harness.ts'
import { removeProject, repoRoot, writeProject } from './helpers.ts'

const dir = writeProject({
  'vt.config.ts': `export default { timeout: 5000 }\n`,
  'proc.vt.ts': `import { rootTest } from '$TEST'
import { expect } from '$EXPECT'
const test = rootTest.extend<{}, { conn: string }>({
  conn: [async ({}, use) => {
    console.log('worker fixture up')
    await use('connected')
    await test.step('disconnect', async () => console.log('disconnecting'))
    throw new Error('worker teardown failed')
  }, { scope: 'worker' }],
})
test('prints', async ({ conn }) => {
  console.log('hello from ' + conn)
  process.stderr.write('to stderr\\n')
  expect(conn).toBe('connected')
})
test('waits for a signal', async () => {
  console.log('waiting')
  await new Promise(r => setTimeout(r, 400))
  console.log('done waiting')
})
test('fails', async () => {
  expect(1).toBe(2)
})
test('not reached', async () => {})
`,
  'unhandled.vt.ts': `import { rootTest as test } from '$TEST'
test('rejects in the background', async () => {
  void Promise.reject(new Error('nobody awaited me'))
  await new Promise(r => setTimeout(r, 100))
})
test('throws in a timer', async () => {
  setTimeout(() => { throw new Error('thrown from a timer') }, 10)
  await new Promise(r => setTimeout(r, 100))
})
`,
})
after(() => removeProject(dir))

test('the worker process runs a group over IPC, attributes output, ignores SIGINT and exits after stop', async () => {
  const ids = await testIds(dir, 'proc.vt.ts')
  const child = fork(path.join(repoRoot, 'src/runner/worker/process.js'), [], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  })
  let rawStderr = ''
  child.stderr!.on('data', d => (rawStderr += d))
  const messages: WorkerToMain[] = []
  const waiters: { pred: (m: WorkerToMain) => boolean; resolve: (m: WorkerToMain) => void }[] = []
  child.on('message', (m: WorkerToMain) => {
    messages.push(m)
    for (const w of [...waiters])
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(m)
      }
  })
  const waitFor = (pred: (m: WorkerToMain) => boolean) =>
    new Promise<WorkerToMain>((resolve, reject) => {
      const found = messages.find(pred)
      if (found) return resolve(found)
      waiters.push({ pred, resolve })
      child.once('exit', code => reject(new Error(`worker exited (${code}) while waiting; stderr:\n${rawStderr}`)))
    })
  const send = (m: MainToWorker) => child.send(m)
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  try {
    send({
      type: 'init',
      workerIndex: 3,
      parallelIndex: 1,
      projectId: 'project-0',
      workerHash: 'x',
      repeatEachIndex: 0,
      config: { configFile: path.join(dir, 'vt.config.ts'), overrides: {} },
    })
    await waitFor(m => m.type === 'ready')
    send({ type: 'run', file: path.join(dir, 'proc.vt.ts'), entries: ids.map(t => ({ testId: t.id, retry: 1 })) })
    await waitFor(m => m.type === 'stdout' && m.text === 'waiting\n')
    child.kill('SIGINT')
    const done = await waitFor(m => m.type === 'done')
    assert.ok(done.type === 'done')
    const title = (id?: string) => ids.find(t => t.id === id)?.title
    assert.deepEqual(done.remaining.map(title), ['not reached'])
    assert.equal(done.unusable, true)
    send({ type: 'stop' })
    const teardown = await waitFor(m => m.type === 'teardownErrors')
    assert.equal(await exited, 0)

    const ends = messages.filter(m => m.type === 'testEnd')
    assert.deepEqual(
      ends.map(m => [title(m.testId), m.status]),
      [
        ['prints', 'passed'],
        ['waits for a signal', 'passed'],
        ['fails', 'failed'],
      ],
    )
    assert.ok(!messages.some(m => (m.type === 'stdout' || m.type === 'stderr') && !m.text), 'no empty output')
    const out = messages.filter((m): m is OutputMessage => (m.type === 'stdout' || m.type === 'stderr') && !!m.text)
    assert.deepEqual(
      out.map(m => [m.type, title(m.testId), m.text]),
      [
        ['stdout', 'prints', 'worker fixture up\n'],
        ['stdout', 'prints', 'hello from connected\n'],
        ['stderr', 'prints', 'to stderr\n'],
        ['stdout', 'waits for a signal', 'waiting\n'],
        ['stdout', 'waits for a signal', 'done waiting\n'],
        ['stdout', undefined, 'disconnecting\n'],
      ],
    )
    const failed = ends[2]
    assert.ok(failed.type === 'testEnd')
    assert.equal(failed.errors[0].location?.line, 22)
    assert.match(failed.errors[0].snippet ?? '', />\s*22 \|\s+expect\(1\)\.toBe\(2\)/)
    assert.doesNotMatch(failed.errors[0].stack ?? '', /node_modules|src\/runner|node:internal/)
    assert.ok(teardown.type === 'teardownErrors')
    assert.equal(teardown.errors.length, 1)
    assert.match(teardown.errors[0].message, /Fixture "conn" .*failed during teardown: worker teardown failed/)
    assert.equal(rawStderr, '')
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
  }
})

test('unhandled rejections and uncaught exceptions fail the running test, the worker survives', async () => {
  const ids = await testIds(dir, 'unhandled.vt.ts')
  const child = fork(path.join(repoRoot, 'src/runner/worker/process.js'), [], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  })
  const messages: WorkerToMain[] = []
  child.on('message', (m: WorkerToMain) => {
    messages.push(m)
    if (m.type === 'ready')
      child.send({
        type: 'run',
        file: path.join(dir, 'unhandled.vt.ts'),
        entries: ids.map(t => ({ testId: t.id, retry: 0 })),
      } satisfies MainToWorker)
    // The dispatcher would hand the remaining test to a fresh worker; this one can still run it.
    if (m.type === 'done' && m.remaining.length)
      child.send({
        type: 'run',
        file: path.join(dir, 'unhandled.vt.ts'),
        entries: m.remaining.map(testId => ({ testId, retry: 0 })),
      } satisfies MainToWorker)
    else if (m.type === 'done') child.send({ type: 'stop' } satisfies MainToWorker)
  })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  try {
    child.send({
      type: 'init',
      workerIndex: 0,
      parallelIndex: 0,
      projectId: 'project-0',
      workerHash: 'x',
      repeatEachIndex: 0,
      config: { configFile: path.join(dir, 'vt.config.ts'), overrides: { retries: 0 } },
    } satisfies MainToWorker)
    assert.equal(await exited, 0)
    const ends = messages.filter(m => m.type === 'testEnd')
    const dones = messages.filter(m => m.type === 'done')
    assert.equal(dones.length, 2, 'the first failure stops the group (reuseWorkerAfterFailure is off)')
    assert.equal(ends.length, 2)
    const [rejected, thrown] = ends
    assert.ok(rejected.type === 'testEnd' && thrown.type === 'testEnd')
    assert.equal(rejected.status, 'failed')
    assert.match(rejected.errors[0].message, /nobody awaited me/)
    assert.equal(rejected.errors[0].location?.line, 3)
    assert.equal(thrown.status, 'failed')
    assert.match(thrown.errors[0].message, /thrown from a timer/)
    assert.equal(thrown.errors[0].location?.line, 7)
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
  }
})
