// Per-project resources: what a project's workers need that outlives one worker (its cluster today; pools,
// networks and faults can join without editing the dispatcher). Set up lazily before the project's first
// worker starts, handed to every worker of the project in its init message, torn down after the project's last
// test and, whatever happened, at the end of the run.
import type { FullProject } from '../../config/types.ts'
import type { InitMessage } from '../ipc.ts'

/** What a project's resources add to a worker's init message. */
export type WorkerResources = Partial<Pick<InitMessage, 'cluster'>>

export interface ResourceProvider {
  setUp(project: FullProject): Promise<WorkerResources>
  tearDown(project: FullProject): Promise<void>
  /** End of run: tear down whatever is still up. */
  tearDownAll(): Promise<void>
  /** Restarts a host's agent of the project's cluster (cluster.faults.restartAgent), when this provider can. */
  restartAgent?(project: FullProject, host: string): Promise<void>
}

/** Several providers as one: set up in order, torn down in reverse order. */
export class ProjectResources implements ResourceProvider {
  constructor(private readonly providers: ResourceProvider[]) {}

  async setUp(project: FullProject): Promise<WorkerResources> {
    const out: WorkerResources = {}
    for (const p of this.providers) Object.assign(out, await p.setUp(project))
    return out
  }

  async tearDown(project: FullProject): Promise<void> {
    for (const p of [...this.providers].reverse()) await p.tearDown(project)
  }

  async tearDownAll(): Promise<void> {
    for (const p of [...this.providers].reverse()) await p.tearDownAll()
  }

  async restartAgent(project: FullProject, host: string): Promise<void> {
    const p = this.providers.find(x => x.restartAgent)
    if (!p?.restartAgent) throw new Error('this run has no cluster whose agents it started')
    await p.restartAgent(project, host)
  }
}
