// `json`: the whole run as one JSON document (config, suites per file with specs and their tests per project,
// every attempt with status, duration, errors, steps, attachments, output, annotations, and stats), written to
// the `outputFile` option, VT_JSON_OUTPUT_FILE, or stdout. Specs of the same file in several projects merge.
import type { FullConfig } from '../src/config/types.ts'
import type { Suite, TestCase } from '../src/runner/model.ts'
import type {
  Attachment,
  FullResult,
  Location,
  Reporter,
  TestError,
  TestResult,
  TestStep,
} from '../src/runner/reporterApi.ts'
import { REDACTED, redactDeep } from '../src/util/secrets.ts'
import { countOutcomes, type Output, projectName, relativePath, stripAnsi } from './base.ts'
import { resolveOutputFile, writeReport } from './output.ts'

export interface JsonLocation {
  file: string
  line: number
  column: number
}

export interface JsonError {
  message: string
  stack?: string
  snippet?: string
  location?: JsonLocation
  details?: Record<string, unknown>
}

export interface JsonStep {
  title: string
  category: string
  startTime: string
  duration: number
  location?: JsonLocation
  error?: JsonError
  steps?: JsonStep[]
}

export interface JsonAttachment {
  name: string
  contentType: string
  path?: string
  /** base64 */
  body?: string
}

export type JsonOutput = { text: string } | { buffer: string }

export interface JsonResult {
  workerIndex: number
  parallelIndex: number
  status: TestResult['status']
  duration: number
  startTime: string
  retry: number
  error?: JsonError
  errors: JsonError[]
  errorLocation?: JsonLocation
  stdout: JsonOutput[]
  stderr: JsonOutput[]
  attachments: JsonAttachment[]
  annotations: { type: string; description?: string }[]
  steps: JsonStep[]
}

export interface JsonTest {
  testId: string
  projectId: string
  projectName: string
  repeatEachIndex: number
  timeout: number
  expectedStatus: TestCase['expectedStatus']
  annotations: { type: string; description?: string }[]
  /** Outcome over all attempts. */
  status: ReturnType<TestCase['outcome']>
  results: JsonResult[]
}

export interface JsonSpec {
  id: string
  title: string
  ok: boolean
  file: string
  line: number
  column: number
  tests: JsonTest[]
}

export interface JsonSuite {
  title: string
  file: string
  line?: number
  column?: number
  specs: JsonSpec[]
  suites?: JsonSuite[]
}

export interface JsonReport {
  config: Record<string, unknown>
  suites: JsonSuite[]
  errors: JsonError[]
  stats: {
    startTime: string
    duration: number
    status: FullResult['status']
    expected: number
    unexpected: number
    flaky: number
    skipped: number
    interrupted: number
    didNotRun: number
  }
}

export interface JsonReporterOptions {
  outputFile?: string
  configDir?: string
  rootDir?: string
  stream?: Output
}

export default class JsonReporter implements Reporter {
  private config!: FullConfig
  private suite!: Suite
  private readonly errors: TestError[] = []
  private readonly outputFile: string | undefined
  private readonly stream: Output
  private rootDir: string

  constructor(options: JsonReporterOptions = {}) {
    this.outputFile = resolveOutputFile(options, 'VT_JSON_OUTPUT_FILE')
    this.stream = options.stream ?? process.stdout
    this.rootDir = options.rootDir ?? process.cwd()
  }

  printsToStdio(): boolean {
    return !this.outputFile
  }

  onBegin(config: FullConfig, suite: Suite): void {
    this.config = config
    this.suite = suite
    if (config.rootDir) this.rootDir = config.rootDir
  }

  onError(error: TestError): void {
    this.errors.push(error)
  }

  onEnd(result: FullResult): void {
    writeReport(this.outputFile, JSON.stringify(this.report(result), null, 2) + '\n', this.stream)
  }

  report(result: FullResult): JsonReport {
    const counts = countOutcomes(this.suite)
    return {
      config: serializeConfig(this.config),
      suites: this.mergedFileSuites(),
      errors: this.errors.map(e => this.error(e)),
      stats: {
        startTime: result.startTime.toISOString(),
        duration: result.duration,
        status: result.status,
        expected: counts.passed,
        unexpected: counts.failed + counts.interrupted,
        flaky: counts.flaky,
        skipped: counts.skipped,
        interrupted: counts.interrupted,
        didNotRun: counts.didNotRun,
      },
    }
  }

  /** File suites of all projects, merged by file so that a spec lists its test in every project. */
  private mergedFileSuites(): JsonSuite[] {
    const byFile = new Map<string, JsonSuite>()
    const fileSuites: Suite[] = []
    const collect = (s: Suite) => {
      if (s.type === 'file') fileSuites.push(s)
      else s.suites.forEach(collect)
    }
    collect(this.suite)
    for (const fileSuite of fileSuites) {
      const file = relativePath(this.rootDir, fileSuite._file ?? fileSuite.location?.file ?? fileSuite.title)
      let json = byFile.get(file)
      if (!json) {
        json = { title: fileSuite.title, file, specs: [] }
        byFile.set(file, json)
      }
      this.mergeSuite(json, fileSuite, file)
    }
    return [...byFile.values()]
  }

  private mergeSuite(json: JsonSuite, suite: Suite, file: string): void {
    for (const entry of suite.entries) {
      if ('entries' in entry) {
        const child = entry as Suite
        json.suites ??= []
        let sub = json.suites.find(s => s.title === child.title && s.line === child.location?.line)
        if (!sub) {
          sub = { title: child.title, file, line: child.location?.line, column: child.location?.column, specs: [] }
          json.suites.push(sub)
        }
        this.mergeSuite(sub, child, file)
      } else {
        const test = entry as TestCase
        let spec = json.specs.find(s => s.title === test.title && s.line === test.location.line)
        if (!spec) {
          spec = {
            id: test.id,
            title: test.title,
            ok: true,
            file,
            line: test.location.line,
            column: test.location.column,
            tests: [],
          }
          json.specs.push(spec)
        }
        spec.tests.push(this.test(test))
        spec.ok = spec.ok && test.ok()
      }
    }
  }

  private test(test: TestCase): JsonTest {
    const project = test.parent.project()
    return {
      testId: test.id,
      projectId: project?.id ?? '',
      projectName: projectName(test),
      repeatEachIndex: test.repeatEachIndex,
      timeout: test.timeout,
      expectedStatus: test.expectedStatus,
      annotations: test.annotations.map(a => ({ ...a })),
      status: test.outcome(),
      results: test.results.map(r => this.result(r)),
    }
  }

  private result(r: TestResult): JsonResult {
    const errors = r.errors.length ? r.errors : r.error ? [r.error] : []
    const first = errors[0]
    return {
      workerIndex: r.workerIndex,
      parallelIndex: r.parallelIndex,
      status: r.status,
      duration: r.duration,
      startTime: toIso(r.startTime),
      retry: r.retry,
      ...(first ? { error: this.error(first) } : {}),
      errors: errors.map(e => this.error(e)),
      ...(first?.location ? { errorLocation: this.location(first.location) } : {}),
      stdout: r.stdout.map(output),
      stderr: r.stderr.map(output),
      attachments: r.attachments.map(attachment),
      annotations: r.annotations.map(a => ({ ...a })),
      steps: r.steps.map(s => this.step(s)),
    }
  }

  private step(s: TestStep): JsonStep {
    return {
      title: s.title,
      category: s.category,
      startTime: toIso(s.startTime),
      duration: s.duration,
      ...(s.location ? { location: this.location(s.location) } : {}),
      ...(s.error ? { error: this.error(s.error) } : {}),
      ...(s.steps.length ? { steps: s.steps.map(c => this.step(c)) } : {}),
    }
  }

  private error(e: TestError): JsonError {
    return {
      message: stripAnsi(e.message),
      ...(e.stack ? { stack: stripAnsi(e.stack) } : {}),
      ...(e.snippet ? { snippet: stripAnsi(e.snippet) } : {}),
      ...(e.location ? { location: this.location(e.location) } : {}),
      ...(e.details ? { details: e.details } : {}),
    }
  }

  private location(l: Location): JsonLocation {
    return { file: relativePath(this.rootDir, l.file), line: l.line, column: l.column }
  }
}

function toIso(d: Date | number | undefined): string {
  const date = d instanceof Date ? d : new Date(d ?? 0)
  return Number.isNaN(date.getTime()) ? new Date(0).toISOString() : date.toISOString()
}

function output(chunk: string | Buffer): JsonOutput {
  return typeof chunk === 'string' ? { text: chunk } : { buffer: chunk.toString('base64') }
}

function attachment(a: Attachment): JsonAttachment {
  return {
    name: a.name,
    contentType: a.contentType,
    ...(a.path ? { path: a.path } : {}),
    ...(a.body ? { body: Buffer.from(a.body).toString('base64') } : {}),
  }
}

/**
 * The resolved config as plain JSON: regular expressions as their source text, functions left out, token
 * values and known secrets redacted.
 */
export function serializeConfig(config: FullConfig | undefined): Record<string, unknown> {
  if (!config) return {}
  return redactDeep(
    JSON.parse(
      JSON.stringify(config, (key, value) => {
        if (value instanceof RegExp) return value.toString()
        if (typeof value === 'function') return undefined
        if (key === 'token' && value && typeof value === 'object' && 'value' in value) return { value: REDACTED }
        return value
      }),
    ),
  )
}
