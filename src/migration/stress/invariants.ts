// What must hold after every step of migration stress, checked against the real cluster: the VM runs on exactly
// the host the model says, in the state it says; no QEMU of it anywhere else (process or agent record); its
// memory is intact (memtest guest); its workload counter never went back.
import { apiStep } from '../../runner/apiStep.ts'
import { verifyMemoryIntegrity } from '../memtestVm.ts'
import type { MigrationModel, MigrationSystem, StepRecord } from './model.ts'

export class InvariantError extends Error {
  override name = 'InvariantError'
}

/** PIDs of QEMU processes whose -name is this VM's, as seen from `host` (argv only: no shell). */
async function qemuPids(s: MigrationSystem, hostIndex: number): Promise<number[]> {
  const host = s.hosts[hostIndex]
  const r = await host.exec(['pgrep', '-a', '-f', 'qemu-system'], { timeout: 10_000 })
  const marker = `-name vt-${s.vm.name},`
  return r.stdout
    .split('\n')
    .filter(line => line.includes(marker))
    .map(line => Number(line.split(' ')[0]))
}

/** Processes of a destroyed QEMU go away shortly after the agent answered: poll briefly before blaming. */
async function settled<T>(probe: () => Promise<T>, ok: (t: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (ok(value) || Date.now() > deadline) return value
    await new Promise(r => setTimeout(r, 100))
  }
}

/** After a command: record it, check the invariants, then the spec's own check. */
export async function afterStep(m: MigrationModel, s: MigrationSystem, record: StepRecord): Promise<void> {
  m.history.push(record)
  await checkInvariants(m, s, record)
  await s.onStep?.(record, m, s)
}

export async function checkInvariants(m: MigrationModel, s: MigrationSystem, record: StepRecord): Promise<void> {
  await apiStep(`invariants after: ${record.description}`, async () => {
    const expected = s.hosts[m.host]
    if (s.vm.host !== expected)
      throw new InvariantError(`the model has the VM on ${expected.name}, its handle says ${s.vm.host.name}`)
    // The agents' records: the VM on its host only, in the state the model says.
    for (let i = 0; i < s.hosts.length; i++) {
      const list = await s.hosts[i].service('vm').list()
      const mine = list.filter(v => v.name === s.vm.name)
      if (i === m.host) {
        if (mine.length !== 1)
          throw new InvariantError(`host ${s.hosts[i].name} should run ${s.vm.name}, its agent lists ${mine.length}`)
        const want = m.paused ? 'paused' : 'running'
        if (mine[0].status !== want)
          throw new InvariantError(`${s.vm.name} on ${s.hosts[i].name} is ${mine[0].status}, the model says ${want}`)
      } else if (mine.length)
        throw new InvariantError(
          `host ${s.hosts[i].name} still has a ${mine[0].status} ${s.vm.name} (the VM runs on ${expected.name})`,
        )
    }
    // The processes: every host sees at most the one QEMU (embedded hosts share one process table).
    const pid = (await s.vm.refresh()).pid
    for (let i = 0; i < s.hosts.length; i++) {
      const pids = await settled(
        () => qemuPids(s, i),
        p => p.every(x => x === pid),
      )
      const stray = pids.filter(x => x !== pid)
      if (stray.length)
        throw new InvariantError(
          `a QEMU of ${s.vm.name} is left running (pid ${stray.join(', ')}, seen from ${s.hosts[i].name}); the VM is pid ${pid} on ${expected.name}`,
        )
    }
    // Memory and the workload counter.
    let counter: number | undefined
    if (s.guest === 'memtest' && s.verifyMemory === 'each-step') counter = (await verifyMemoryIntegrity(s.vm)).passes
    if (s.guest === 'tiny' && !m.paused) {
      const out = await s.vm.exec('cat /tmp/counter 2>/dev/null || echo 0')
      counter = Number(out.stdout.trim() || 0)
    }
    if (counter !== undefined) {
      if (counter < s.counter)
        throw new InvariantError(`the workload counter went back from ${s.counter} to ${counter}`)
      s.counter = counter
    }
  })
}
