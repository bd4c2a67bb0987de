// Project clusters: started lazily before a project's first test (only then is the embedded cluster module
// imported), shared by all of the project's workers, stopped after its last test and always at the end of the
// run (failure, Ctrl-C included).

import type { StartedCluster } from '../../cluster/embedded.ts'
import type { ClusterConnectionInfo } from '../../config/cluster.ts'
import type { FullConfig, FullProject } from '../../config/types.ts'
import type { ResourceProvider, WorkerResources } from './resources.ts'

export class ClusterManager implements ResourceProvider {
  private readonly started = new Map<string, Promise<StartedCluster>>()

  constructor(private readonly config: FullConfig) {}

  async setUp(project: FullProject): Promise<WorkerResources> {
    const info = await this.infoFor(project)
    return info ? { cluster: info } : {}
  }

  async infoFor(project: FullProject): Promise<ClusterConnectionInfo | undefined> {
    if (!project.cluster) return undefined
    let cluster = this.started.get(project.id)
    if (!cluster) {
      const spec = project.cluster
      cluster = import('../../cluster/embedded.ts').then(m => m.startCluster(spec, { project, config: this.config }))
      this.started.set(project.id, cluster)
    }
    return (await cluster).info
  }

  async restartAgent(project: FullProject, host: string): Promise<void> {
    const cluster = this.started.get(project.id)
    if (!cluster) throw new Error(`project "${project.name}" has no cluster`)
    const started = await cluster
    if (!started.restartAgent) {
      throw new Error(
        `cannot restart the agent of host ${host}: project "${project.name}" uses remote hosts, whose agents vt did not start (restart it with the host's service manager)`,
      )
    }
    await started.restartAgent(host)
  }

  async tearDown(project: FullProject): Promise<void> {
    const cluster = this.started.get(project.id)
    if (!cluster) return
    this.started.delete(project.id)
    let started: StartedCluster
    try {
      started = await cluster
    } catch {
      return // it never started; the start error was reported
    }
    try {
      await started.stop()
    } catch (e: any) {
      process.stderr.write(
        `vt: stopping the cluster of project "${project.name || project.id}" failed: ${e?.message ?? e}\n`,
      )
    }
  }

  async tearDownAll(): Promise<void> {
    const ids = [...this.started.keys()]
    await Promise.all(ids.map(id => this.tearDown(this.config.projects.find(p => p.id === id)!)))
  }
}
