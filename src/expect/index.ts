// vt's `expect`: jest's standalone `expect` for the matchers, plus Playwright's additions: `expect.soft` (record
// the failure on the running test and go on), `expect.poll` (retry a value until the matcher passes) and
// `toPass` (retry a block until it stops throwing). Retrying APIs default to the config's expect timeout.
import { type Expect, expect as jestExpect, type Matchers } from 'expect'
import { userFrames } from '../runner/errors.ts'
import type { Location } from '../runner/reporterApi.ts'
import { currentTestInfo } from '../runner/worker/globals.ts'

declare module 'expect' {
  interface Matchers<R extends void | Promise<void>, T = unknown> {
    /** Retries the function until it stops throwing, up to `timeout` (default: the expect timeout). */
    toPass(options?: { timeout?: number; intervals?: number[] }): Promise<void>
  }
}

const defaultIntervals = [100, 250, 500, 1000]
const fallbackTimeout = 5_000

function expectTimeout(): number {
  return currentTestInfo()?._expectTimeout() ?? fallbackTimeout
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** Replaces an error's stack frames with the call site captured when the matcher was called. */
function withCallSite(error: unknown, callSite: Error, prefix?: string): Error {
  const e = error instanceof Error ? error : new Error(String(error))
  const message = prefix ? `${prefix}\n\n${e.message}` : e.message
  const frames = (callSite.stack ?? '').split('\n').filter(l => /^\s*at /.test(l))
  const out = new Error(message)
  out.name = e.name
  out.stack = [`${e.name}: ${message}`, ...frames].join('\n')
  Object.assign(out, { matcherResult: (e as any).matcherResult })
  return out
}

function isPromiseLike(value: unknown): value is Promise<unknown> {
  return !!value && typeof (value as Promise<unknown>).then === 'function'
}

/**
 * Wraps the matchers object of `jestExpect(actual)` so every matcher call goes through `call` with its name
 * ("toBe", "not.toBe", "resolves.toBe"), including the `.not`, `.resolves` and `.rejects` chains.
 */
function wrapMatchers(
  target: any,
  call: (name: string, invoke: () => unknown, callSite: Error) => unknown,
  prefix = '',
): any {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver)
      if (prop === 'not' || prop === 'resolves' || prop === 'rejects')
        return wrapMatchers(value, call, `${prefix}${prop}.`)
      if (typeof value !== 'function' || typeof prop !== 'string') return value
      return (...args: unknown[]) => {
        const callSite = new Error()
        return call(`${prefix}${prop}`, () => value.apply(obj, args), callSite)
      }
    },
  })
}

/** The spec location of a matcher call: the first user frame of the stack captured at the call. */
function callLocation(callSite: Error): Location | undefined {
  const frame = userFrames(callSite.stack)[0]
  return frame ? { file: frame.file, line: frame.line, column: frame.column } : undefined
}

/** Runs a matcher as an 'expect' step of the running test (outside a test it just runs). */
function asStep(title: string, invoke: () => unknown, callSite: Error): unknown {
  const info = currentTestInfo()
  if (!info) return invoke()
  return info._stepSync(title, 'expect', callLocation(callSite), invoke)
}

function soft<T>(actual: T, message?: string): ReturnType<Expect> {
  return wrapMatchers(jestExpect(actual), (name, invoke, callSite) => {
    const fail = (error: unknown) => {
      const info = currentTestInfo()
      const e = message ? withCallSite(error, callSite, message) : error
      if (!info) throw e
      info._failWithError(e)
    }
    try {
      const result = asStep(`expect.soft.${name}`, invoke, callSite)
      if (isPromiseLike(result)) return result.then(undefined, fail)
      return result
    } catch (error) {
      fail(error)
    }
  })
}

export interface PollOptions {
  /** Milliseconds to keep trying; default the config's expect timeout, 0 for no limit. */
  timeout?: number
  /** Waits between attempts; the last one repeats. Default [100, 250, 500, 1000]. */
  intervals?: number[]
  /** Shown first when the poll fails. */
  message?: string
}

export type AsyncMatchers<T> = Matchers<Promise<void>, T>
export type PollMatchers<T> = AsyncMatchers<T> & { not: AsyncMatchers<T> }

async function retry<T>(
  attempt: () => Promise<T>,
  options: { timeout?: number; intervals?: number[] },
  what: string,
  callSite: Error,
  message?: string,
): Promise<T> {
  const timeout = options.timeout ?? expectTimeout()
  const intervals = options.intervals?.length ? options.intervals : defaultIntervals
  const deadline = timeout ? Date.now() + timeout : Number.POSITIVE_INFINITY
  let lastError: unknown
  for (let i = 0; ; i++) {
    try {
      return await attempt()
    } catch (error) {
      lastError = error
    }
    const wait = intervals[Math.min(i, intervals.length - 1)]
    if (Date.now() + wait > deadline) break
    await sleep(wait)
  }
  const head = `${message ? `${message}\n\n` : ''}${what}: timeout ${timeout}ms exceeded.`
  throw withCallSite(lastError, callSite, head)
}

function poll<T>(fn: () => T | Promise<T>, options: PollOptions = {}): PollMatchers<Awaited<T>> {
  if (typeof fn !== 'function') throw new Error('expect.poll() expects a function that returns the value to check')
  const make = (negate: boolean): any =>
    new Proxy(
      {},
      {
        get(_obj, prop) {
          if (prop === 'not') return make(!negate)
          if (prop === 'then') return undefined
          if (typeof prop !== 'string') return undefined
          return (...args: unknown[]) => {
            const callSite = new Error()
            const title = `expect.poll.${negate ? 'not.' : ''}${prop}`
            return asStep(
              title,
              () =>
                retry(
                  async () => {
                    const value = await fn()
                    const matchers: any = negate ? jestExpect(value).not : jestExpect(value)
                    if (typeof matchers[prop] !== 'function')
                      throw new Error(`expect.poll(): unknown matcher "${prop}"`)
                    await matchers[prop](...args)
                  },
                  options,
                  'expect.poll',
                  callSite,
                  options.message,
                ),
              callSite,
            )
          }
        },
      },
    )
  return make(false)
}

jestExpect.extend({
  async toPass(received: unknown, options: { timeout?: number; intervals?: number[] } = {}) {
    if (typeof received !== 'function')
      throw new Error('toPass() expects a function: expect(async () => { ... }).toPass()')
    const callSite = new Error()
    const isNot = this.isNot
    try {
      await retry(async () => received(), options, 'toPass', callSite)
      return { pass: !isNot, message: () => 'expected the function not to pass, but it passed' }
    } catch (error) {
      if (isNot) return { pass: false, message: () => 'toPass failed as expected' }
      return { pass: false, message: () => (error as Error).message }
    }
  },
})

function vtExpectFn<T>(actual: T, message?: string): ReturnType<Expect> {
  return wrapMatchers(jestExpect(actual), (name, invoke, callSite) => {
    if (message === undefined) return asStep(`expect.${name}`, invoke, callSite)
    try {
      const result = asStep(`expect.${name}`, invoke, callSite)
      if (isPromiseLike(result))
        return result.then(undefined, error => {
          throw withCallSite(error, callSite, message)
        })
      return result
    } catch (error) {
      throw withCallSite(error, callSite, message)
    }
  })
}

export type VtExpect = Expect &
  (<T = unknown>(actual: T, message?: string) => ReturnType<Expect>) & {
    /** Like expect, but a failure is recorded on the test and the test goes on. */
    soft: <T = unknown>(actual: T, message?: string) => ReturnType<Expect>
    /** Calls `fn` until the matcher passes or the timeout runs out. */
    poll: <T>(fn: () => T | Promise<T>, options?: PollOptions) => PollMatchers<Awaited<T>>
  }

export const expect: VtExpect = Object.assign(vtExpectFn, jestExpect, { soft, poll }) as unknown as VtExpect
