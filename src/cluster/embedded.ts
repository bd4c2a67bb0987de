// The embedded cluster: the runner's main process starts it before a project's first test and stops it after
// its last. Implementation follows in this file; the signature is the contract with the runner.
import type { FullConfig, FullProject } from '../config/types.ts'
import type { ClusterConfig, ClusterConnectionInfo } from './config.ts'

export interface StartedCluster {
  info: ClusterConnectionInfo
  stop(): Promise<void>
}

export async function startCluster(
  cluster: ClusterConfig,
  ctx: { project: FullProject; config: FullConfig },
): Promise<StartedCluster> {
  void cluster
  void ctx
  throw new Error('vt: startCluster is not implemented yet')
}
