// Seeds for the project's own property tests. Every fc.assert goes through `seeded`, which picks the seed
// (VT_PROPERTY_SEED replays one) and prints it as a test diagnostic even when the property holds, so any red CI
// run can be replayed: `VT_PROPERTY_SEED=<seed> node --import tsx --test <file>`.
import type { TestContext } from 'node:test'
import type { Parameters } from 'fast-check'

export function propertySeed(): number {
  const fixed = process.env.VT_PROPERTY_SEED
  if (fixed === undefined || fixed === '') return (Math.random() * 0x100000000) | 0
  const seed = Number(fixed)
  if (!Number.isSafeInteger(seed)) throw new Error(`VT_PROPERTY_SEED=${fixed} is not an integer seed`)
  return seed | 0
}

/** fast-check parameters with a printed seed; `params` may pin one (a regression). */
export function seeded<T>(t: TestContext, params: Parameters<T> = {}): Parameters<T> {
  const seed = params.seed ?? propertySeed()
  t.diagnostic(`fast-check seed ${seed} for "${t.name}" (replay: VT_PROPERTY_SEED=${seed})`)
  return { ...params, seed }
}
