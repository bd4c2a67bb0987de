// Merging sharded runs: reads the blob files written by reporters/blob.ts (one per shard), merges their suite
// trees into one and replays their events, as one run, into any reporters (`vt merge-reports`).
import fs from 'node:fs'
import path from 'node:path'
import type { FullConfig, FullProject } from '../src/config/types.ts'
import { Suite, TestCase } from '../src/runner/model.ts'
import type {
  Attachment,
  FullResult,
  Location,
  Reporter,
  TestError,
  TestResult,
  TestStep,
} from '../src/runner/reporterApi.ts'
import { newTestResult } from '../src/runner/results.ts'
import { type BlobError, type BlobEvent, type BlobSuite, blobVersion, type Loc } from './blob.ts'

/** Reads blob files (one per shard) and replays them, as one run, into `reporters`. */
export async function mergeBlobReports(files: string[], reporters: Reporter[], rootDir?: string): Promise<FullResult> {
  if (!files.length) throw new Error('mergeBlobReports: no blob files given')
  const blobs = files.map(file => parseBlob(file))
  const first = blobs[0][0]
  if (first.type !== 'begin') throw new Error(`${files[0]}: a blob starts with a begin event`)
  const root = rootDir ?? first.rootDir
  const abs = (f: string) => (path.isAbsolute(f) ? f : path.join(root, f))
  const absLoc = (l: Loc | undefined): Location | undefined => (l ? { ...l, file: abs(l.file) } : undefined)
  const absError = (e: BlobError): TestError => ({ ...e, ...(e.location ? { location: absLoc(e.location) } : {}) })

  // One tree for all shards: suites merged by type + title (+ file), tests by id.
  const rootSuite = new Suite('', 'root')
  const tests = new Map<string, TestCase>()
  const projects: FullProject[] = []
  const merge = (into: Suite, blob: BlobSuite) => {
    for (const entry of blob.entries) {
      if (entry.kind === 'test') {
        if (tests.has(entry.id)) continue
        const t = new TestCase(entry.title, () => {}, undefined, absLoc(entry.location)!)
        t.id = entry.id
        t.expectedStatus = entry.expectedStatus
        t.timeout = entry.timeout
        t.retries = entry.retries
        t.repeatEachIndex = entry.repeatEachIndex
        t.annotations.push(...entry.annotations)
        into._addTest(t)
        tests.set(t.id, t)
        continue
      }
      let suite = into.suites.find(
        s =>
          s.type === entry.type && s.title === entry.title && (s._file ?? '') === (entry.file ? abs(entry.file) : ''),
      )
      if (!suite) {
        suite = new Suite(entry.title, entry.type)
        suite.location = absLoc(entry.location)
        if (entry.file) suite._file = abs(entry.file)
        if (entry.loadError) suite._loadError = absError(entry.loadError)
        if (entry.project) {
          suite._project = entry.project as unknown as FullProject
          projects.push(suite._project)
        }
        into._addSuite(suite)
      }
      merge(suite, entry)
    }
  }
  for (const [i, events] of blobs.entries()) {
    const begin = events[0]
    if (begin.type !== 'begin') throw new Error(`${files[i]}: a blob starts with a begin event`)
    if (begin.version !== blobVersion)
      throw new Error(`${files[i]}: blob version ${begin.version}, expected ${blobVersion}`)
    merge(rootSuite, begin.suite)
  }
  const config = { ...(first.config as unknown as FullConfig), rootDir: root, shard: null, projects }
  const on = (call: (r: Reporter) => unknown) => reporters.forEach(call)
  on(r => r.onBegin?.(config, rootSuite))

  let status: FullResult['status'] = 'passed'
  let startTime = Number.POSITIVE_INFINITY
  let endTime = 0
  for (const [i, events] of blobs.entries()) {
    const results = new Map<string, TestResult>()
    const steps = new Map<string, TestStep>()
    const key = (testId: string, retry: number) => `${testId}#${retry}`
    const testOf = (id: string) => {
      const t = tests.get(id)
      if (!t) throw new Error(`${files[i]}: event for unknown test ${id}`)
      return t
    }
    for (const e of events) {
      if (e.type === 'testBegin') {
        const t = testOf(e.testId)
        const result = newTestResult({
          retry: e.retry,
          workerIndex: e.workerIndex,
          parallelIndex: e.parallelIndex,
          startTime: new Date(e.startTime),
          duration: 0,
          status: 'passed',
        })
        t.results.push(result)
        results.set(key(e.testId, e.retry), result)
        on(r => r.onTestBegin?.(t, result))
      } else if (e.type === 'stepBegin') {
        const t = testOf(e.testId)
        const result = results.get(key(e.testId, e.retry))!
        const parent = e.parentStepId ? steps.get(e.parentStepId) : undefined
        const step: TestStep = {
          title: e.title,
          category: e.category,
          location: absLoc(e.location),
          parent,
          startTime: new Date(e.startTime),
          duration: 0,
          steps: [],
          titlePath: () => [...(parent ? parent.titlePath() : []), e.title],
        }
        ;(parent ? parent.steps : result.steps).push(step)
        steps.set(e.stepId, step)
        on(r => r.onStepBegin?.(t, result, step))
      } else if (e.type === 'stepEnd') {
        const step = steps.get(e.stepId)
        if (!step) continue
        step.duration = e.duration
        if (e.error) step.error = absError(e.error)
        const t = testOf(e.testId)
        on(r => r.onStepEnd?.(t, results.get(key(e.testId, e.retry))!, step))
      } else if (e.type === 'stdout' || e.type === 'stderr') {
        const chunk = 'text' in e.chunk ? e.chunk.text : Buffer.from(e.chunk.buffer, 'base64')
        const t = e.testId ? testOf(e.testId) : undefined
        const result = e.testId ? results.get(key(e.testId, e.retry ?? 0)) : undefined
        result?.[e.type].push(chunk)
        if (e.type === 'stdout') on(r => r.onStdOut?.(chunk, t, result))
        else on(r => r.onStdErr?.(chunk, t, result))
      } else if (e.type === 'testEnd') {
        const t = testOf(e.testId)
        const result = results.get(key(e.testId, e.retry))!
        result.status = e.status
        result.duration = e.duration
        result.errors = e.errors.map(absError)
        result.error = result.errors[0]
        result.annotations = e.annotations
        result.attachments = e.attachments.map(
          (a): Attachment => ({
            name: a.name,
            contentType: a.contentType,
            ...(a.path ? { path: a.path } : {}),
            ...(a.body ? { body: Buffer.from(a.body, 'base64') } : {}),
          }),
        )
        t.expectedStatus = e.expectedStatus
        t.annotations.splice(0, t.annotations.length, ...e.testAnnotations)
        on(r => r.onTestEnd?.(t, result))
      } else if (e.type === 'error') {
        on(r => r.onError?.(absError(e.error)))
      } else if (e.type === 'end') {
        startTime = Math.min(startTime, e.startTime)
        endTime = Math.max(endTime, e.startTime + e.duration)
        status = worse(status, e.status)
      }
    }
  }
  const result: FullResult = {
    status,
    startTime: new Date(Number.isFinite(startTime) ? startTime : Date.now()),
    duration: Math.max(0, endTime - (Number.isFinite(startTime) ? startTime : endTime)),
  }
  for (const r of reporters) await r.onEnd?.(result)
  for (const r of reporters) await r.onExit?.()
  return result
}

const severity: FullResult['status'][] = ['passed', 'failed', 'timedout', 'interrupted']
function worse(a: FullResult['status'], b: FullResult['status']): FullResult['status'] {
  return severity.indexOf(b) > severity.indexOf(a) ? b : a
}

export function parseBlob(file: string): BlobEvent[] {
  const text = fs.readFileSync(file, 'utf8')
  return text
    .split('\n')
    .filter(Boolean)
    .map((line, i) => {
      try {
        return JSON.parse(line) as BlobEvent
      } catch (e) {
        throw new Error(`${file}:${i + 1}: not a blob event (${(e as Error).message})`)
      }
    })
}
