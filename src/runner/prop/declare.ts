// `test.prop(arbitraries, options)(title, body)`: the declaration side of property-based tests (the shape of
// @fast-check/vitest). Checks the arbitraries and options where the spec declares them, so a mistake is an error
// at file:line when the file loads, not in the middle of a run.
import fc from 'fast-check'
import { formatLocation } from '../errors.ts'
import type { Location } from '../results.ts'
import { replayPathExample, replayPathPattern } from './path.ts'

/** Options of one property. Every run gets fresh test-scoped fixtures, torn down before the next run. */
export interface PropOptions {
  /** Runs before the property is considered to hold (default 100, fast-check's). */
  numRuns?: number
  /** Fixes the seed (`vt test --seed` still wins). */
  seed?: number
  /** With `seed`: replays the run (and shrink) at this path, as printed by a failure, e.g. '7:1:0,steps=CBF:F'. */
  path?: string
  /** Stop at the first failing run instead of shrinking it. */
  endOnFailure?: boolean
  /** Timeout of one run in ms, its fixtures' setup and teardown included (default: the test's timeout). */
  timeout?: number
  /** Timeout of the whole property in ms (all runs and the shrinking); reaching it fails the test. */
  totalTimeout?: number
}

const optionKeys: (keyof PropOptions)[] = ['numRuns', 'seed', 'path', 'endOnFailure', 'timeout', 'totalTimeout']

/** Arbitraries by name (the body gets an object) or in a list (the body gets an array). */
export type PropArbitraries = Record<string, fc.Arbitrary<unknown>> | readonly fc.Arbitrary<unknown>[]

export type PropValues<A> = A extends readonly fc.Arbitrary<unknown>[]
  ? { [K in keyof A]: A[K] extends fc.Arbitrary<infer T> ? T : never }
  : { [K in keyof A]: A[K] extends fc.Arbitrary<infer T> ? T : never }

export interface PropDeclaration {
  arbitraries: PropArbitraries
  options: PropOptions
  location: Location
}

function isArbitrary(value: unknown): value is fc.Arbitrary<unknown> {
  return value instanceof fc.Arbitrary
}

/** Validates what `test.prop()` got; throws an Error naming the culprit and the spec's file:line. */
export function declareProp(arbitraries: unknown, options: unknown, location: Location): PropDeclaration {
  const at = ` (at ${formatLocation(location)})`
  if (!arbitraries || typeof arbitraries !== 'object')
    throw new Error(
      `test.prop() expects arbitraries: an object such as { steps: fc.commands(...) } or an array [fc.nat(), ...]${at}`,
    )
  const entries = Array.isArray(arbitraries)
    ? arbitraries.map((a, i) => [`[${i}]`, a] as const)
    : Object.entries(arbitraries)
  if (entries.length === 0) throw new Error(`test.prop() needs at least one arbitrary${at}`)
  for (const [name, arb] of entries)
    if (!isArbitrary(arb))
      throw new Error(
        `test.prop(): arbitrary ${name} is not a fast-check Arbitrary (use \`fc\` from 'vt', e.g. fc.nat(); a second copy of fast-check does not mix)${at}`,
      )
  const opts = (options ?? {}) as Record<string, unknown>
  if (typeof opts !== 'object' || Array.isArray(opts))
    throw new Error(`test.prop(): options must be an object { ${optionKeys.join(', ')} }${at}`)
  for (const key of Object.keys(opts))
    if (!optionKeys.includes(key as keyof PropOptions))
      throw new Error(`test.prop(): unknown option "${key}"; expected one of ${optionKeys.join(', ')}${at}`)
  const int = (key: keyof PropOptions, min: number) => {
    const v = opts[key]
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min))
      throw new Error(`test.prop(): ${key} must be an integer >= ${min}, got ${JSON.stringify(v)}${at}`)
  }
  int('numRuns', 1)
  int('timeout', 0)
  int('totalTimeout', 0)
  const seed = opts.seed
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isSafeInteger(seed)))
    throw new Error(`test.prop(): seed must be an integer, got ${JSON.stringify(seed)}${at}`)
  if (opts.path !== undefined && (typeof opts.path !== 'string' || !replayPathPattern.test(opts.path)))
    throw new Error(
      `test.prop(): path must be a replay path such as ${replayPathExample}, got ${JSON.stringify(opts.path)}${at}`,
    )
  if (opts.path !== undefined && seed === undefined)
    throw new Error(`test.prop(): path replays a run of one seed: give seed too${at}`)
  if (opts.endOnFailure !== undefined && typeof opts.endOnFailure !== 'boolean')
    throw new Error(`test.prop(): endOnFailure must be a boolean${at}`)
  return { arbitraries: arbitraries as PropArbitraries, options: { ...opts } as PropOptions, location }
}

/** A seed from test.use({ seed }): checked where it is given. */
export function checkSeed(value: unknown, api: string, location: Location): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new Error(`${api}: seed must be an integer, got ${JSON.stringify(value)} (at ${formatLocation(location)})`)
  return value
}
