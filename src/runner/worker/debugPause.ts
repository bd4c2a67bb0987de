// The worker's half of `vt test --debug` and `--keep-on-failure`: a test pauses (at `test.debug()`, or after
// failing and before its fixtures are torn down) with its cluster sessions and VMs alive. The worker lists what
// the user can reach (each connected host's session and its VMs), asks the main process to tell the user, and
// waits for 'debugResume'. The wait runs in a slot without a timeout, so the test's own clock stands still, and
// a 'stop' (Ctrl-C) interrupts it like any other work of the test.
import type { DebugPauseMessage, WorkerToMain } from '../ipc.ts'
import type { Location } from '../reporterApi.ts'
import { Slot, type TimeoutManager } from './timeoutManager.ts'

export type DebugMode = 'all' | 'failures'

export class DebugPauser {
  private release?: () => void

  constructor(
    readonly mode: DebugMode,
    private readonly send: (message: WorkerToMain) => void,
    private readonly timeouts: TimeoutManager,
  ) {}

  /** The main process said go on. */
  resume(): void {
    this.release?.()
  }

  /** Pauses until the user goes on; throws the InterruptedError of a 'stop'. */
  async pause(
    test: { id: string; title: string },
    reason: DebugPauseMessage['reason'],
    location: Location,
    error?: string,
  ): Promise<void> {
    await this.timeouts.run(
      new Slot(0),
      () => 'paused for debugging',
      async () => {
        const hosts = await liveHosts()
        const resumed = new Promise<void>(resolve => (this.release = resolve))
        this.send({
          type: 'debugPause',
          testId: test.id,
          title: test.title,
          reason,
          location,
          ...(error ? { error } : {}),
          hosts,
        })
        try {
          await resumed
        } finally {
          this.release = undefined
        }
      },
    )
  }
}

/** Every host this worker is connected to, with its session and the VMs in it. */
async function liveHosts(): Promise<DebugPauseMessage['hosts']> {
  // Imported here: a worker that never pauses does not load the cluster client.
  const { openClusters } = await import('../../cluster/cluster.ts')
  const out: DebugPauseMessage['hosts'] = []
  for (const cluster of openClusters) {
    for (const host of cluster.hosts) {
      const client = host.client
      if (client.state === 'closed') continue
      const vms = await client
        .service('vm')
        .list()
        .then(list => list.map(v => ({ name: v.name, status: v.status })))
        .catch(() => [])
      out.push({
        name: host.name,
        url: host.url,
        address: host.address,
        session: { id: client.session.id, secret: client.session.secret },
        vms,
      })
    }
  }
  return out
}
