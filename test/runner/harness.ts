// Runs spec files through the real worker code: in this process (WorkerMain with a message sink) or in a
// forked worker process (process.js over IPC).
import path from 'node:path'
import type { TestEndMessage, WorkerToMain } from '../../src/runner/ipc.ts'
import { assignTestIds, loadTestFile } from '../../src/runner/loadFile.ts'
import { WorkerMain } from '../../src/runner/worker/workerMain.ts'

export interface RunOptions {
  /** Only these test titles (default: all, in file order). */
  titles?: string[]
  retry?: number
  projectId?: string
  repeatEachIndex?: number
  /** Send 'stop' (interrupting a running test) as soon as this returns true; checked every 10 ms. */
  stopWhen?: () => boolean
}

export interface RunResult {
  messages: WorkerToMain[]
  /** testEnd messages keyed by test title. */
  ends: Map<string, TestEndMessage>
  titleOf: Map<string, string>
}

export async function testIds(dir: string, file: string, projectId = 'project-0', repeatEachIndex = 0) {
  const suite = await loadTestFile(path.join(dir, file), dir)
  if (suite._loadError) throw new Error(suite._loadError.message)
  assignTestIds(suite, projectId, repeatEachIndex)
  return suite.allTests().map(t => ({ id: t.id, title: t.title }))
}

export async function runInProcess(dir: string, file: string, options: RunOptions = {}): Promise<RunResult> {
  const messages: WorkerToMain[] = []
  const worker = new WorkerMain(m => messages.push(m))
  const projectId = options.projectId ?? 'project-0'
  await worker.handle({
    type: 'init',
    workerIndex: 0,
    parallelIndex: 0,
    projectId,
    workerHash: 'h',
    repeatEachIndex: options.repeatEachIndex ?? 0,
    config: { configFile: path.join(dir, 'vt.config.ts'), overrides: {} },
  })
  const tests = await testIds(dir, file, projectId, options.repeatEachIndex ?? 0)
  const selected = options.titles ? options.titles.map(t => tests.find(x => x.title === t)!) : tests
  const run = worker.handle({
    type: 'run',
    file: path.join(dir, file),
    entries: selected.map(t => ({ testId: t.id, retry: options.retry ?? 0 })),
  })
  if (options.stopWhen) {
    while (!options.stopWhen()) await new Promise(r => setTimeout(r, 10))
    await Promise.all([worker.handle({ type: 'stop' }), run])
  } else {
    await run
    await worker.handle({ type: 'stop' })
  }
  const titleOf = new Map(tests.map(t => [t.id, t.title]))
  const ends = new Map<string, TestEndMessage>()
  for (const m of messages) if (m.type === 'testEnd') ends.set(titleOf.get(m.testId)!, m)
  return { messages, ends, titleOf }
}

/** The step tree of one test as indented "category: title" lines (with " ✘" on failed steps). */
export function stepLines(result: RunResult, title: string): string[] {
  const depth = new Map<string, number>()
  const lines: string[] = []
  const index = new Map<string, number>()
  for (const m of result.messages) {
    if (m.type === 'stepBegin' && result.titleOf.get(m.testId) === title) {
      const d = m.parentStepId ? depth.get(m.parentStepId)! + 1 : 0
      depth.set(m.stepId, d)
      index.set(m.stepId, lines.length)
      lines.push(`${'  '.repeat(d)}${m.category}: ${m.title}`)
    }
    if (m.type === 'stepEnd' && m.error && index.has(m.stepId)) lines[index.get(m.stepId)!] += ' ✘'
  }
  return lines
}
