// `blob`: the run's event stream as JSON lines, so that shards run on several machines can be merged into one
// report later (`mergeBlobReports`, in blobMerge.ts), with any reporters. Written to the `outputFile` option,
// VT_BLOB_OUTPUT_FILE, or `blob-report/report[-<shard>-of-<total>].jsonl` under the config's folder. Paths are
// stored relative to the root dir so that a blob made on one machine replays on another.
import path from 'node:path'
import type { FullConfig } from '../src/config/types.ts'
import { Suite, type TestCase } from '../src/runner/model.ts'
import type { FullResult, Location, Reporter, TestError, TestResult, TestStep } from '../src/runner/reporterApi.ts'
import { serializeConfig } from './json.ts'
import { resolveOutputFile, writeReport } from './output.ts'

export const blobVersion = 1

export type Loc = { file: string; line: number; column: number }

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
export interface BlobSuite {
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
export type BlobError = TestError
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
