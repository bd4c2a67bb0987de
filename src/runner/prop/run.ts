// Runs a `test.prop` test in the worker: fast-check drives the runs; every run sets up the body's test-scoped
// fixtures afresh (VMs, networks, faults) in its own time slot and tears them down before the next one. Each
// run is a step, the shrinking one step holding its attempts. The seed is always printed and recorded (JSON,
// JUnit properties, HTML), and a failure names the seed, the path, the shrunk counterexample and the command
// line that replays it.
import fc from 'fast-check'
import type { Suite, TestCase } from '../model.ts'
import type { TestInfoImpl } from '../worker/testInfo.ts'
import { InterruptedError, Slot, TimeoutError, type TimeoutManager } from '../worker/timeoutManager.ts'
import type { PropDeclaration } from './declare.ts'
import { formatCounterexample, replayCommand } from './format.ts'
import { commandsReplayPath, formatReplayPath, isCommandsArbitrary, parseReplayPath } from './path.ts'

export interface PropRun {
  test: TestCase
  info: TestInfoImpl
  prop: PropDeclaration
  timeouts: TimeoutManager
  /** Sets up the fixtures the body asks for (fresh test-scoped ones after `teardown`). */
  setup(): Promise<Record<string, unknown>>
  /** The point to tear down to after a run. */
  mark(): number
  /** Tears down the test-scoped fixtures set up since `mark`; returns their errors. */
  teardown(mark: number, slot: Slot): Promise<unknown[]>
}

/** Thrown when a property fails: the message holds everything needed to understand and replay it. */
export class PropertyFailedError extends Error {
  override name = 'PropertyFailedError'
}

/** A seed for fast-check: any 32-bit integer. */
function randomSeed(): number {
  return (Date.now() ^ (Math.random() * 0x100000000)) | 0
}

/** test.use({ seed }) of the innermost describe (or file) that sets one. */
function useSeed(test: TestCase): number | undefined {
  for (let s: Suite | undefined = test.parent; s; s = s.parent) if (s._seed !== undefined) return s._seed
  return undefined
}

/**
 * Which seed (and path) this run of the test uses: `vt test --seed` beats the property's own option, which beats
 * test.use({ seed }), which beats the config's `seed`; without any, a random one. A fixed seed moves by the repeat
 * index so that `--repeat-each` explores different cases (the printed replay names the moved seed).
 */
export function chooseSeed(r: PropRun): { seed: number; path?: string; fixed: boolean } {
  const { config, project } = r.info
  const replay = config.replaySeed ?? undefined
  const path = replay !== undefined ? (config.replayPath ?? undefined) : r.prop.options.path
  const base = replay ?? r.prop.options.seed ?? useSeed(r.test) ?? project.seed
  if (base === undefined) return { seed: randomSeed(), fixed: false }
  const moved = path === undefined ? (base + r.info.repeatEachIndex) | 0 : base
  return { seed: moved, path, fixed: true }
}

export async function runProperty(r: PropRun): Promise<void> {
  const { info, prop, test } = r
  const { seed, path } = chooseSeed(r)
  const named = !Array.isArray(prop.arbitraries)
  const arbitrary = named
    ? fc.record(prop.arbitraries as Record<string, fc.Arbitrary<unknown>>)
    : fc.tuple(...(prop.arbitraries as fc.Arbitrary<unknown>[]))
  const runTimeout = prop.options.timeout ?? info.timeout
  const replay = (p?: string) =>
    replayCommand({
      file: test.location.file,
      line: test.location.line,
      project: info.project.name || undefined,
      configFile: info.config.configFile || undefined,
      seed,
      path: p,
    })
  info.annotations.push({ type: 'seed', description: String(seed) })

  let runs = 0
  let failedRuns = 0
  let shrinking: ReturnType<TestInfoImpl['_openStep']> | undefined
  let lastFailure: { values: unknown; error: unknown } | undefined
  let firstFailingRun = 0
  /** Ctrl-C or a stop: no more runs; fast-check's remaining calls fail at once and nothing is set up. */
  let aborted: unknown

  const oneRun = async (values: unknown, label: string) => {
    const mark = r.mark()
    let error: unknown
    try {
      await r.timeouts.run(
        new Slot(runTimeout),
        () => `Property ${label} exceeded its timeout of ${runTimeout}ms.`,
        async () => {
          const fixtures = await r.setup()
          // Called without a receiver: stack frames then read "at file:line", not "TestCase.fn".
          const body = test.fn as (f: unknown, v: unknown, i: unknown) => unknown
          await body(fixtures, values, info)
        },
      )
    } catch (e) {
      error = e
    }
    const errors = await r.teardown(mark, new Slot(runTimeout))
    if (error !== undefined) throw error
    if (errors.length) throw errors[0]
  }

  const predicate = async (values: unknown) => {
    if (aborted !== undefined) throw aborted
    runs++
    const label = failedRuns ? `shrink attempt ${runs - firstFailingRun}` : `run ${runs}`
    const step = () => info._runStep(label, () => oneRun(values, label), { category: 'test.step' }, prop.location)
    try {
      await (shrinking ? shrinking.run(step) : step())
    } catch (error) {
      if (error instanceof InterruptedError) aborted = error
      if (failedRuns++ === 0 && !prop.options.endOnFailure) {
        firstFailingRun = runs
        shrinking = info._openStep('shrinking', 'test.step', prop.location)
      }
      lastFailure = { values, error }
      throw error
    }
  }
  // Replaying a path: the commands arbitraries start from the replay path recorded with it.
  const replaying = path !== undefined ? parseReplayPath(path) : undefined
  const restore: (() => void)[] = []
  for (const [name, rp] of Object.entries(replaying?.commands ?? {})) {
    const arb = (prop.arbitraries as Record<string, unknown>)[name]
    if (!isCommandsArbitrary(arb))
      throw new PropertyFailedError(
        `replay path names "${name}", which is not an fc.commands() arbitrary of this property`,
      )
    const saved = arb.sourceReplayPath
    arb.sourceReplayPath = rp
    restore.push(() => {
      arb.sourceReplayPath = saved
    })
  }
  let details: fc.RunDetails<[unknown]>
  try {
    details = await r.timeouts.run(
      new Slot(0),
      () => '',
      () =>
        fc.check(fc.asyncProperty(arbitrary, predicate), {
          seed,
          ...(replaying ? { path: replaying.path } : {}),
          ...(prop.options.numRuns !== undefined ? { numRuns: prop.options.numRuns } : {}),
          endOnFailure: prop.options.endOnFailure ?? false,
          ...(prop.options.totalTimeout ? { interruptAfterTimeLimit: prop.options.totalTimeout } : {}),
          markInterruptAsFailure: true,
        }),
    )
  } catch (error) {
    const message = (error as Error)?.message ?? String(error)
    if (!message.startsWith('Unable to replay')) throw error
    throw new PropertyFailedError(
      `${message}: the path does not fit this property and seed (did the spec change?). --seed ${seed} alone replays the whole search.`,
    )
  } finally {
    for (const undo of restore) undo()
  }
  // The shrinking step ends failed: its last failing attempt is the counterexample.
  if (shrinking) shrinking.end(lastFailure?.error ?? aborted)
  if (aborted !== undefined) throw aborted

  const where = path !== undefined ? `seed ${seed}, path ${path}` : `seed ${seed}`
  if (!details.failed) {
    process.stdout.write(
      `property "${test.title}": ${details.numRuns} runs passed (${where}; replay: ${replay(path)})\n`,
    )
    return
  }
  if (!lastFailure) {
    // Interrupted by totalTimeout before any run failed.
    const message = `Property did not finish within its totalTimeout of ${prop.options.totalTimeout}ms: ${details.numRuns} of ${prop.options.numRuns ?? 100} runs passed (${where})`
    process.stdout.write(`property "${test.title}": ${message}\n`)
    throw new PropertyFailedError(message)
  }
  // The path to print: fast-check's, plus the replay path of each fc.commands() value in the counterexample.
  const commands: Record<string, string> = {}
  const entries = named ? Object.entries(lastFailure.values as object) : (lastFailure.values as unknown[]).entries()
  for (const [name, value] of entries) {
    const rp = commandsReplayPath(value)
    if (rp) commands[String(name)] = rp
  }
  const failingPath = details.counterexamplePath
    ? formatReplayPath({ path: details.counterexamplePath, commands })
    : path
  const counterexample = formatCounterexample(lastFailure.values, named)
  const command = replay(failingPath ?? undefined)
  info.annotations.push(
    { type: 'counterexample', description: counterexample },
    ...(failingPath ? [{ type: 'path', description: failingPath }] : []),
    { type: 'replay', description: command },
  )
  const cause = lastFailure.error
  const causeMessage = cause instanceof Error ? cause.message : String(cause)
  const header = [
    `Property failed after ${details.numRuns} run${details.numRuns === 1 ? '' : 's'}` +
      `${details.numShrinks ? `, shrunk ${details.numShrinks} time${details.numShrinks === 1 ? '' : 's'}` : ''}` +
      ` (seed ${seed}${failingPath ? `, path ${failingPath}` : ''})` +
      (details.interrupted ? ` — stopped by totalTimeout ${prop.options.totalTimeout}ms while shrinking` : ''),
    'Counterexample:',
    counterexample,
    `Replay: ${command}`,
    '',
    cause instanceof TimeoutError ? `Timeout: ${causeMessage}` : causeMessage,
  ].join('\n')
  process.stdout.write(`property "${test.title}": failed (seed ${seed}; replay: ${command})\n`)
  const error = new PropertyFailedError(header)
  // Keep the failing run's frames: the code frame then points at the line of the spec that failed.
  if (cause instanceof Error && cause.stack) {
    const frames = cause.stack.split('\n').filter(l => /^\s+at /.test(l))
    error.stack = `${error.name}: ${header}\n${frames.join('\n')}`
  }
  throw error
}
