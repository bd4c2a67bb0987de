// `blob`: the run's event stream as JSON lines, so that shards run on several machines can be merged into one
// report later (`mergeBlobReports`), with any reporters. Written to the `outputFile` option, VT_BLOB_OUTPUT_FILE,
// or `blob-report/report[-<shard>-of-<total>].jsonl` under the config's folder. Paths are stored relative to the
// root dir so that a blob made on one machine replays on another.
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
import { serializeConfig } from './json.ts'
import { resolveOutputFile, writeReport } from './output.ts'

export const blobVersion = 1

type Loc = { file: string; line: number; column: number }

interface BlobTest {
  kind: 'test'
  id: string
  title: string
  location: Loc
  expectedStatus: TestCase['expectedStatus']
  timeout: number
  retries: number
  repeatEachIndex: number
  annotations: { type: string; description?: string }[]
}
interface BlobSuite {
  kind: 'suite'
  type: Suite['type']
  title: string
  location?: Loc
  /** project suites: the resolved project */
  project?: Record<string, unknown>
  /** file suites: path relative to rootDir */
  file?: string
  loadError?: TestError
  entries: (BlobSuite | BlobTest)[]
}
type BlobError = TestError
type Chunk = { text: string } | { buffer: string }

export type BlobEvent =
  | { type: 'begin'; version: number; rootDir: string; config: Record<string, unknown>; suite: BlobSuite }
  | { type: 'testBegin'; testId: string; retry: number; workerIndex: number; parallelIndex: number; startTime: number }
  | {
      type: 'stepBegin'
      testId: string
      retry: number
      stepId: string
      parentStepId?: string
      title: string
      category: string
      location?: Loc
      startTime: number
    }
  | { type: 'stepEnd'; testId: string; retry: number; stepId: string; duration: number; error?: BlobError }
  | { type: 'stdout' | 'stderr'; testId?: string; retry?: number; chunk: Chunk }
  | {
      type: 'testEnd'
      testId: string
      retry: number
      status: TestResult['status']
      duration: number
      errors: BlobError[]
      annotations: { type: string; description?: string }[]
      attachments: { name: string; contentType: string; path?: string; body?: string }[]
      expectedStatus: TestCase['expectedStatus']
      testAnnotations: { type: string; description?: string }[]
    }
  | { type: 'error'; error: BlobError }
  | { type: 'end'; status: FullResult['status']; startTime: number; duration: number }

export interface BlobReporterOptions {
  outputFile?: string
  configDir?: string
  rootDir?: string
}

export default class BlobReporter implements Reporter {
  private readonly lines: string[] = []
  private readonly stepIds = new WeakMap<TestStep, string>()
  private nextStepId = 1
  private rootDir: string
  private readonly configDir: string
  private outputFile: string | undefined

  constructor(options: BlobReporterOptions = {}) {
    this.configDir = options.configDir ?? process.cwd()
    this.rootDir = options.rootDir ?? this.configDir
    this.outputFile = resolveOutputFile(options, 'VT_BLOB_OUTPUT_FILE')
  }

  printsToStdio(): boolean {
    return false
  }

  private emit(event: BlobEvent): void {
    this.lines.push(JSON.stringify(event))
  }

  private rel(file: string): string {
    const r = path.relative(this.rootDir, file)
    return (r.startsWith('..') || path.isAbsolute(r) ? file : r).split(path.sep).join('/')
  }

  private loc(l: Location | undefined): Loc | undefined {
    return l ? { file: this.rel(l.file), line: l.line, column: l.column } : undefined
  }

  private error(e: TestError): BlobError {
    return { ...e, ...(e.location ? { location: this.loc(e.location) } : {}) }
  }

  onBegin(config: FullConfig, suite: Suite): void {
    if (config.rootDir) this.rootDir = config.rootDir
    if (!this.outputFile) {
      const shard = config.shard ? `-${config.shard.current}-of-${config.shard.total}` : ''
      this.outputFile = path.join(this.configDir, 'blob-report', `report${shard}.jsonl`)
    }
    this.emit({
      type: 'begin',
      version: blobVersion,
      rootDir: this.rootDir,
      config: serializeConfig(config),
      suite: this.suite(suite),
    })
  }

  private suite(s: Suite): BlobSuite {
    return {
      kind: 'suite',
      type: s.type,
      title: s.title,
      ...(s.location ? { location: this.loc(s.location) } : {}),
      ...(s._project ? { project: serializeConfig(s._project as any) } : {}),
      ...(s._file ? { file: this.rel(s._file) } : {}),
      ...(s._loadError ? { loadError: this.error(s._loadError) } : {}),
      entries: s.entries.map(e =>
        e instanceof Suite
          ? this.suite(e)
          : {
              kind: 'test' as const,
              id: e.id,
              title: e.title,
              location: this.loc(e.location)!,
              expectedStatus: e.expectedStatus,
              timeout: e.timeout,
              retries: e.retries,
              repeatEachIndex: e.repeatEachIndex,
              annotations: e.annotations.map(a => ({ ...a })),
            },
      ),
    }
  }

  onTestBegin(test: TestCase, result: TestResult): void {
    this.emit({
      type: 'testBegin',
      testId: test.id,
      retry: result.retry,
      workerIndex: result.workerIndex,
      parallelIndex: result.parallelIndex,
      startTime: new Date(result.startTime).getTime(),
    })
  }

  onStepBegin(test: TestCase, result: TestResult, step: TestStep): void {
    const stepId = String(this.nextStepId++)
    this.stepIds.set(step, stepId)
    const parentStepId = step.parent ? this.stepIds.get(step.parent) : undefined
    this.emit({
      type: 'stepBegin',
      testId: test.id,
      retry: result.retry,
      stepId,
      ...(parentStepId ? { parentStepId } : {}),
      title: step.title,
      category: step.category,
      ...(step.location ? { location: this.loc(step.location) } : {}),
      startTime: new Date(step.startTime).getTime(),
    })
  }

  onStepEnd(test: TestCase, result: TestResult, step: TestStep): void {
    const stepId = this.stepIds.get(step)
    if (!stepId) return
    this.emit({
      type: 'stepEnd',
      testId: test.id,
      retry: result.retry,
      stepId,
      duration: step.duration,
      ...(step.error ? { error: this.error(step.error) } : {}),
    })
  }

  onStdOut(chunk: string | Buffer, test?: TestCase, result?: TestResult): void {
    this.output('stdout', chunk, test, result)
  }

  onStdErr(chunk: string | Buffer, test?: TestCase, result?: TestResult): void {
    this.output('stderr', chunk, test, result)
  }

  private output(type: 'stdout' | 'stderr', chunk: string | Buffer, test?: TestCase, result?: TestResult): void {
    this.emit({
      type,
      ...(test ? { testId: test.id, retry: result?.retry ?? 0 } : {}),
      chunk: typeof chunk === 'string' ? { text: chunk } : { buffer: chunk.toString('base64') },
    })
  }

  onTestEnd(test: TestCase, result: TestResult): void {
    this.emit({
      type: 'testEnd',
      testId: test.id,
      retry: result.retry,
      status: result.status,
      duration: result.duration,
      errors: (result.errors.length ? result.errors : result.error ? [result.error] : []).map(e => this.error(e)),
      annotations: result.annotations.map(a => ({ ...a })),
      attachments: result.attachments.map(a => ({
        name: a.name,
        contentType: a.contentType,
        ...(a.path ? { path: a.path } : {}),
        ...(a.body ? { body: Buffer.from(a.body).toString('base64') } : {}),
      })),
      expectedStatus: test.expectedStatus,
      testAnnotations: test.annotations.map(a => ({ ...a })),
    })
  }

  onError(error: TestError): void {
    this.emit({ type: 'error', error: this.error(error) })
  }

  onEnd(result: FullResult): void {
    this.emit({
      type: 'end',
      status: result.status,
      startTime: new Date(result.startTime).getTime(),
      duration: result.duration,
    })
    writeReport(this.outputFile, this.lines.join('\n') + '\n', process.stdout)
  }
}

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
