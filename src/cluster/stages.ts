// Stages synchronized across nodes (the CERN framework's init / run / finalize): each stage runs on every node
// at once and the next starts only when all finished; finalize runs even after a failure. Each stage is a step
// with one sub-step per node; what a node's function returns (e.g. `vm.succeed`'s stdout) is attached to it.
import { apiStep } from '../runner/apiStep.ts'

export type StageFn<N> = (node: N, index: number) => unknown | Promise<unknown>

export interface Stages<N> {
  init?: StageFn<N>
  run?: StageFn<N>
  finalize?: StageFn<N>
}

export interface StageResults {
  /** Per stage that ran, each node's return value (in node order). */
  init?: unknown[]
  run?: unknown[]
  finalize?: unknown[]
}

/** A stage failed on some nodes: names them, keeps every cause. */
export class StageError extends Error {
  override name = 'StageError'
  constructor(
    readonly stage: string,
    readonly failures: { node: string; error: unknown }[],
  ) {
    const lines = failures.map(f => `  ${f.node}: ${(f.error as Error)?.message ?? String(f.error)}`)
    super(`stage "${stage}" failed on ${failures.length} node(s):\n${lines.join('\n')}`, {
      cause: failures[0]?.error,
    })
  }
}

function nameOf(node: unknown, index: number): string {
  const n = (node as { name?: unknown })?.name
  return typeof n === 'string' ? n : `node ${index}`
}

async function runStage<N>(stage: string, nodes: readonly N[], fn: StageFn<N>): Promise<unknown[]> {
  return apiStep(`stage ${stage} on ${nodes.length} node(s)`, async () => {
    const settled = await Promise.allSettled(
      nodes.map((node, i) =>
        apiStep(`${stage}: ${nameOf(node, i)}`, async step => {
          const value = await fn(node, i)
          if (typeof value === 'string' && value)
            await step.attach(`${stage} ${nameOf(node, i)}`, { body: value, contentType: 'text/plain' })
          return value
        }),
      ),
    )
    const failures = settled.flatMap((s, i) =>
      s.status === 'rejected' ? [{ node: nameOf(nodes[i], i), error: s.reason }] : [],
    )
    if (failures.length) throw new StageError(stage, failures)
    return settled.map(s => (s as PromiseFulfilledResult<unknown>).value)
  })
}

/**
 * init on every node, then run on every node, then finalize on every node (always, even when init or run
 * failed). Throws the first failing stage's StageError (finalize's own failure if it alone failed).
 */
export async function stages<N>(nodes: readonly N[], s: Stages<N>): Promise<StageResults> {
  if (!Array.isArray(nodes) || nodes.length === 0)
    throw new Error('stages(nodes, { init, run, finalize }): give at least one node (e.g. group.all or cluster.hosts)')
  for (const k of Object.keys(s ?? {}))
    if (!['init', 'run', 'finalize'].includes(k))
      throw new Error(`stages(): unknown stage "${k}" (stages are init, run and finalize)`)
  const results: StageResults = {}
  let failure: unknown
  for (const stage of ['init', 'run'] as const) {
    const fn = s[stage]
    if (!fn) continue
    try {
      results[stage] = await runStage(stage, nodes, fn)
    } catch (e) {
      failure = e
      break
    }
  }
  if (s.finalize) {
    try {
      results.finalize = await runStage('finalize', nodes, s.finalize)
    } catch (e) {
      failure ??= e
    }
  }
  if (failure) throw failure
  return results
}
