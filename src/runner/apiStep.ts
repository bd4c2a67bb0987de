// The one public way for a domain API (Vm, Host, migrate, faults, networks, sync, ...) to appear in reports as
// a step of the running test, located at the spec line that called it. Outside a test (a worker fixture's
// teardown, a script) the body simply runs.
import { captureLocation } from './errors.ts'
import type { Location, Progress } from './results.ts'
import { currentTestInfo } from './worker/globals.ts'
import { normalizeProgress } from './worker/progress.ts'

export interface ApiStepOptions {
  /** Fail the step (and the test) after this many ms. */
  timeout?: number
  /** Report errors at the step's location instead of inside it. */
  box?: boolean
  /** Where the step is reported; default: the first spec frame that called into vt. */
  location?: Location
}

/** What the body may do with its step. */
export interface ApiStepContext {
  /** Attaches to the running test (a no-op outside a test). */
  attach(name: string, options: { body?: string | Buffer; path?: string; contentType?: string }): Promise<void>
  /**
   * Says how far the step's work has come: `{ bytes, totalBytes }`, `{ percent }` and/or `{ message }`. Call it
   * as often as convenient (reports are throttled); the list reporter shows it; `progress({})` says the work is
   * over while the step goes on. A no-op outside a test.
   */
  progress(progress: Progress): void
}

const noTest: ApiStepContext = {
  attach: async () => {},
  progress: p => {
    normalizeProgress(p)
  },
}

export async function apiStep<T>(
  title: string,
  body: (step: ApiStepContext) => T | Promise<T>,
  options: ApiStepOptions = {},
): Promise<T> {
  const info = currentTestInfo()
  if (!info) return await body(noTest)
  const location = options.location ?? captureLocation({ skipVt: true })
  return info._runStep(
    title,
    () => {
      const stepId = info._currentStepId()
      return body({ attach: (name, o) => info.attach(name, o), progress: p => info._progress(p, stepId) })
    },
    { timeout: options.timeout, box: options.box },
    location,
  )
}

/**
 * Progress of whatever step runs now (the innermost one, or the test itself): for code deep inside an
 * operation that has no ApiStepContext at hand. A no-op outside a test.
 */
export function reportProgress(progress: Progress): void {
  const info = currentTestInfo()
  if (info) info._progress(progress)
  else normalizeProgress(progress)
}

/** The title of the running test, or undefined outside a test (e.g. to name who arrived at a barrier). */
export function currentTestTitle(): string | undefined {
  return currentTestInfo()?.title
}

/** The spec location of the current call into vt (for APIs that report several steps from one call). */
export function apiLocation(): Location {
  return captureLocation({ skipVt: true })
}

/** A command as a step title: one line, at most 80 characters. */
export function commandTitle(command: string | string[]): string {
  const text = (Array.isArray(command) ? command.join(' ') : command).replace(/\s+/g, ' ').trim()
  return `\`${text.length > 80 ? `${text.slice(0, 77)}...` : text}\``
}
