// TestInfo of the running test: what the test and its fixtures see as `testInfo`, plus the worker's
// bookkeeping (status, errors, steps streamed to the main process, the test's time slot).
import { AsyncLocalStorage } from 'node:async_hooks'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { FullConfig, FullProject } from '../../config/types.ts'
import { safeGet } from '../../util/thrown.ts'
import { codeFrame, serializeError } from '../errors.ts'
import type { WorkerToMain } from '../ipc.ts'
import type { Annotation, TestCase } from '../model.ts'
import type { Location, Progress, TestError, TestStatus } from '../reporterApi.ts'
import type { TestInfo } from '../testType.ts'
import type { RuntimeTestInfo } from './globals.ts'
import { ProgressThrottle } from './progress.ts'
import { Slot, type TimeoutManager } from './timeoutManager.ts'

/** Thrown by `test.skip()` / `test.fixme()` inside a running test to stop it. */
export class SkipError extends Error {
  constructor(description?: string) {
    super(description ? `Test skipped: ${description}` : 'Test skipped')
    this.name = 'SkipError'
  }
}

/** A step ran past its own `timeout`: the test fails (it does not end as timedOut). */
class StepTimeoutError extends Error {
  override name = 'TimeoutError'
}

/** Set on an error thrown out of a boxed step: its location is the test.step() call. */
export const boxedLocation = Symbol('vt.boxedLocation')

interface StepFrame {
  id: string
}

const stepStorage = new AsyncLocalStorage<StepFrame | undefined>()

const contentTypes: Record<string, string> = {
  '.txt': 'text/plain',
  '.log': 'text/plain',
  '.json': 'application/json',
  '.html': 'text/html',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.xml': 'application/xml',
  '.zip': 'application/zip',
}

function sanitize(s: string): string {
  return s
    .replace(/[\x00-\x2C\x2E-\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
}

export interface TestInfoInit {
  test: TestCase
  retry: number
  config: FullConfig
  project: FullProject
  workerIndex: number
  parallelIndex: number
  timeout: number
  send: (message: WorkerToMain) => void
  timeouts: TimeoutManager
}

export class TestInfoImpl implements TestInfo, RuntimeTestInfo {
  readonly _test: TestCase
  readonly title: string
  readonly titlePath: string[]
  readonly file: string
  readonly line: number
  readonly column: number
  readonly config: FullConfig
  readonly project: FullProject
  readonly workerIndex: number
  readonly parallelIndex: number
  readonly retry: number
  readonly repeatEachIndex: number
  readonly annotations: Annotation[]
  readonly tags: string[]
  expectedStatus: TestStatus
  status: TestStatus = 'passed'
  readonly errors: TestError[] = []
  readonly outputDir: string
  /** The test slot: fixtures setup, hooks and body. */
  readonly _slot: Slot
  readonly _timeouts: TimeoutManager
  private readonly _send: (message: WorkerToMain) => void
  private readonly _startTime = Date.now()
  private _endTime?: number
  private _stepCount = 0
  private readonly _throttle: ProgressThrottle
  /** What the test is doing right now, for timeout messages. */
  _activity?: string
  /** The slot currently counting for this test (test slot, then teardown slot). */
  _currentSlot: Slot

  constructor(init: TestInfoInit) {
    const { test } = init
    this._test = test
    this.title = test.title
    const fileSuite = test.parent.fileSuite()
    const path0: string[] = []
    for (let s = test.parent; s && s.type !== 'file'; s = s.parent!) if (s.title) path0.unshift(s.title)
    this.titlePath = [fileSuite?.title ?? '', ...path0, test.title]
    this.file = test.location.file
    this.line = test.location.line
    this.column = test.location.column
    this.config = init.config
    this.project = init.project
    this.workerIndex = init.workerIndex
    this.parallelIndex = init.parallelIndex
    this.retry = init.retry
    this.repeatEachIndex = test.repeatEachIndex
    this.annotations = test.annotations.map(a => ({ ...a }))
    this.tags = [...test.tags]
    this.expectedStatus = test.expectedStatus
    this._slot = new Slot(init.timeout)
    this._currentSlot = this._slot
    this._timeouts = init.timeouts
    this._send = init.send
    this._throttle = new ProgressThrottle((stepId, progress) =>
      this._send({ type: 'progress', testId: this._test.id, ...(stepId ? { stepId } : {}), progress }),
    )
    const relative = (fileSuite?.title ?? path.basename(this.file)).replace(/\.[^./]+$/, '')
    const name = sanitize([relative, ...path0, test.title].join('-'))
    const hash = createHash('sha1').update(test.id).digest('hex').slice(0, 5)
    let dirName = `${name}-${hash}`
    if (this.project.name) dirName += `-${sanitize(this.project.name)}`
    if (this.repeatEachIndex) dirName += `-repeat${this.repeatEachIndex}`
    if (this.retry) dirName += `-retry${this.retry}`
    this.outputDir = path.join(this.project.outputDir, dirName)
  }

  get error(): TestError | undefined {
    return this.errors[0]
  }

  get timeout(): number {
    return this._slot.timeout
  }

  get duration(): number {
    return (this._endTime ?? Date.now()) - this._startTime
  }

  _ended = false

  _end(): void {
    this._endTime ??= Date.now()
    this._ended = true
    this._throttle.clear()
  }

  setTimeout(ms: number): void {
    this._timeouts.updateTimeout(this._slot, ms)
  }

  outputPath(...segments: string[]): string {
    const result = path.resolve(this.outputDir, ...segments)
    const relative = path.relative(this.outputDir, result)
    if (relative.startsWith('..') || path.isAbsolute(relative))
      throw new Error(`testInfo.outputPath(): "${segments.join('/')}" points outside the test's output dir`)
    fs.mkdirSync(this.outputDir, { recursive: true })
    return result
  }

  skip(...args: unknown[]): void {
    this._modifier('skip', args)
  }

  fixme(...args: unknown[]): void {
    this._modifier('fixme', args)
  }

  fail(...args: unknown[]): void {
    this._modifier('fail', args)
  }

  slow(...args: unknown[]): void {
    this._modifier('slow', args)
  }

  _modifier(type: 'skip' | 'fixme' | 'fail' | 'slow', args: unknown[]): void {
    let condition = true
    let description: string | undefined
    if (typeof args[0] === 'string') description = args[0]
    else if (args.length > 0) {
      condition = !!args[0]
      if (typeof args[1] === 'string') description = args[1]
    }
    if (!condition) return
    this.annotations.push(description === undefined ? { type } : { type, description })
    if (type === 'slow') this.setTimeout(this.timeout * 3)
    else if (type === 'fail') {
      if (this.expectedStatus !== 'skipped') this.expectedStatus = 'failed'
    } else {
      this.expectedStatus = 'skipped'
      throw new SkipError(description)
    }
  }

  /** Records an error on the test (soft assertions, teardown errors): the test fails but keeps running. */
  _failWithError(error: unknown): void {
    this.errors.push(serializeErrorWithBox(error))
    if (this.status === 'passed' || this.status === 'skipped') this.status = 'failed'
  }

  _expectTimeout(): number {
    return this.config.expectTimeout
  }

  async attach(
    name: string,
    options: { path?: string; body?: string | Buffer; contentType?: string } = {},
  ): Promise<void> {
    if (typeof name !== 'string' || !name) throw new Error('testInfo.attach() needs a name')
    if ((options.path === undefined) === (options.body === undefined))
      throw new Error(`testInfo.attach("${name}") needs exactly one of { path } or { body }`)
    await this._runStep(
      `attach "${name}"`,
      async () => {
        if (options.path !== undefined) {
          const source = path.resolve(options.path)
          const data = await fs.promises.readFile(source)
          const ext = path.extname(source)
          const hash = createHash('sha1').update(data).digest('hex').slice(0, 12)
          const target = this.outputPath('attachments', `${sanitize(name) || 'attachment'}-${hash}${ext}`)
          await fs.promises.mkdir(path.dirname(target), { recursive: true })
          await fs.promises.copyFile(source, target)
          this._send({
            type: 'attach',
            testId: this._test.id,
            name,
            contentType: options.contentType ?? contentTypes[ext.toLowerCase()] ?? 'application/octet-stream',
            path: target,
          })
        } else {
          const body = options.body!
          this._send({
            type: 'attach',
            testId: this._test.id,
            name,
            contentType: options.contentType ?? (typeof body === 'string' ? 'text/plain' : 'application/octet-stream'),
            body: Buffer.from(body).toString('base64'),
          })
        }
      },
      { category: 'attach' },
      undefined,
    )
  }

  /** Progress of the innermost running step (or of the test), at most a few messages a second per step. */
  _progress(progress: Progress, stepId = this._currentStepId()): void {
    if (this._ended) return
    this._throttle.report(stepId, progress)
  }

  /** The innermost step running in this async context (undefined: the test body itself). */
  _currentStepId(): string | undefined {
    return stepStorage.getStore()?.id
  }

  /** Reports a step's begin (its parent found through async context); returns the function that ends it. */
  private _beginStep(title: string, category: string, location: Location | undefined) {
    const parent = stepStorage.getStore()
    const stepId = `${this._test.id}.${this.retry}.${++this._stepCount}`
    const testId = this._test.id
    this._send({
      type: 'stepBegin',
      testId,
      stepId,
      parentStepId: parent?.id,
      title,
      category,
      location,
      wallTime: Date.now(),
    })
    // end() for success, end(error) for failure — even when the thrown value is undefined.
    const end = (...failure: [error: unknown] | []) => {
      this._throttle.forget(stepId)
      this._send({
        type: 'stepEnd',
        testId,
        stepId,
        wallTime: Date.now(),
        ...(failure.length ? { error: serializeErrorWithBox(failure[0]) } : {}),
      })
    }
    return { stepId, end }
  }

  /** A step whose end its caller decides (a property's shrinking phase); `run` runs code inside it. */
  _openStep(title: string, category: string, location: Location | undefined) {
    const { stepId, end } = this._beginStep(title, category, location)
    return { end, run: <T>(body: () => T): T => stepStorage.run({ id: stepId }, body) }
  }

  _stepSync<T>(title: string, category: string, location: Location | undefined, body: () => T): T {
    const { stepId, end } = this._beginStep(title, category, location)
    let result: T
    try {
      result = stepStorage.run({ id: stepId }, body)
    } catch (error) {
      end(error)
      throw error
    }
    const maybePromise = result as unknown as Promise<unknown> | undefined
    if (maybePromise && typeof maybePromise.then === 'function') {
      return maybePromise.then(
        value => {
          end()
          return value
        },
        error => {
          end(error)
          throw error
        },
      ) as T
    }
    end()
    return result
  }

  /** Runs `body` as a step reported to the main process; nested steps find their parent through async context. */
  async _runStep<T>(
    title: string,
    body: () => T | Promise<T>,
    options: { timeout?: number; box?: boolean; category?: string; hidden?: boolean },
    location: Location | undefined,
  ): Promise<T> {
    if (options.hidden) return await body()
    const { stepId, end } = this._beginStep(title, options.category ?? 'test.step', location)
    try {
      const result = await stepStorage.run({ id: stepId }, () => withTimeout(body, options.timeout, title))
      end()
      return result
    } catch (error) {
      if (options.box && location && error && typeof error === 'object' && !(boxedLocation in error))
        (error as Record<symbol, unknown>)[boxedLocation] = location
      end(error)
      throw error
    }
  }
}

async function withTimeout<T>(body: () => T | Promise<T>, timeout: number | undefined, title: string): Promise<T> {
  if (!timeout) return await body()
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      Promise.resolve().then(body),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new StepTimeoutError(`Step timeout of ${timeout}ms exceeded in "${title}".`)),
          timeout,
        )
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** serializeError, but an error that left a boxed step points at the step call. */
export function serializeErrorWithBox(error: unknown, fallback?: Location): TestError {
  const result = serializeError(error, fallback)
  const boxed = safeGet(error, boxedLocation)
  if (boxed) {
    const location = boxed as Location
    result.location = location
    const snippet = codeFrame(location)
    if (snippet) result.snippet = snippet
    if (result.stack) {
      const lines = result.stack.split('\n')
      const firstFrame = lines.findIndex(l => /^\s*at /.test(l))
      const head = firstFrame === -1 ? lines : lines.slice(0, firstFrame)
      result.stack = [...head, `    at ${location.file}:${location.line}:${location.column}`].join('\n')
    }
  }
  return result
}
