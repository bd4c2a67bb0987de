// The worker process's own facts, set once when the main process sends 'init'. Built-in fixtures (such as
// `cluster`) read the project's cluster connection from here.
import type { ClusterConnectionInfo } from '../config/cluster.ts'
import type { FullConfig, FullProject } from '../config/types.ts'

export interface WorkerContext {
  workerIndex: number
  parallelIndex: number
  config: FullConfig
  project: FullProject
  cluster?: ClusterConnectionInfo
}

let current: WorkerContext | undefined

export function setWorkerContext(context: WorkerContext): void {
  current = context
}

/** The running worker's context; throws outside a worker (e.g. when a spec is only being listed). */
export function workerContext(): WorkerContext {
  if (!current) throw new Error('vt: worker context is only available inside a worker process while tests run')
  return current
}

export function maybeWorkerContext(): WorkerContext | undefined {
  return current
}
