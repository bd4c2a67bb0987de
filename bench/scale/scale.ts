// bench/scale: many tiny VMs on an embedded cluster. Boots --vms VMs spread over --hosts hosts, checks every one
// answers exec, migrates each once (to the next host), checks exec again, destroys them all and checks nothing
// is left (no booking, no QEMU, no agent, no run directory). Prints wall time per phase and the peak memory of
// the whole process tree (this controller, the agents, every QEMU), next to its peer measured in the same run:
// one VM alone doing the same steps on the same cluster.
//   npm run bench:scale -- [--vms 32] [--hosts 4] [--memory 128M] [--concurrency 8] [--templates]
// --templates runs the scenario twice, booting and then from the hosts' template cache (VmSpec `template`), on a
// fresh cluster each; it says so and stops when this checkout has no template cache.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Cluster } from '../../src/cluster/cluster.ts'
import { startCluster } from '../../src/cluster/embedded.ts'
import type { Host } from '../../src/cluster/host.ts'
import { type VmSpec, vmSpec } from '../../src/protocol/vm.ts'
import { formatBytes } from '../../src/util/capacity.ts'
import { Vm } from '../../src/vm/index.ts'
import { samplePeak, type TreeMemory, treeMemory } from './memory.ts'

const { values } = parseArgs({
  options: {
    vms: { type: 'string', default: '32' },
    hosts: { type: 'string', default: '4' },
    memory: { type: 'string', default: '128M' },
    concurrency: { type: 'string', default: '8' },
    templates: { type: 'boolean', default: false },
  },
})
const VMS = Number(values.vms)
const HOSTS = Number(values.hosts)
const CONCURRENCY = Number(values.concurrency)
const MEMORY = values.memory as string
const hasTemplates = 'template' in (vmSpec as unknown as { shape: Record<string, unknown> }).shape
if (values.templates && !hasTemplates) {
  console.error('bench:scale: --templates needs the template cache (VmSpec `template`), which this checkout lacks')
  process.exit(2)
}
const modes: ('boot' | 'template')[] = values.templates ? ['boot', 'template'] : ['boot']

const out = mkdtempSync(join(tmpdir(), 'vt-bench-scale-'))
process.on('exit', () => rmSync(out, { recursive: true, force: true }))

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const mib = (m: TreeMemory) =>
  `PSS ${formatBytes(m.pssBytes)}, RSS ${formatBytes(m.rssBytes)} (${m.processes} processes)`

/** Runs `fn` over `items` with at most `limit` at once; rejects with the first failure after all settle. */
async function pool<T, R>(items: T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  const errors: unknown[] = []
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      try {
        results[i] = await fn(items[i], i)
      } catch (e) {
        errors.push(e)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  if (errors.length) throw new AggregateError(errors, `${errors.length} of ${items.length} failed: ${errors[0]}`)
  return results
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now()
  const r = await fn()
  return [r, performance.now() - t0]
}

/** Live processes whose command line names this run's directory (agents, QEMUs). */
function processesOf(runDir: string): number[] {
  const pids: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`${runDir}/`) && !/\) Z /.test(stat)) pids.push(Number(p))
    } catch {}
  }
  return pids
}

async function scenario(mode: 'boot' | 'template'): Promise<void> {
  const perHost = Math.ceil(VMS / HOSTS)
  // Memory stays each host's share of the machine. vCPUs: room for every VM plus the migrations in flight (a
  // migrating VM is booked on both hosts); more than the default share on a small machine, on purpose.
  const started = await startCluster(
    { hosts: HOSTS, capacity: { cpus: perHost + CONCURRENCY } },
    { project: { name: `scale-${mode}`, outputDir: join(out, mode) } as never, config: {} as never },
  )
  const runDir = (started.info.sharedPool as string).replace(/\/shared$/, '')
  const cluster = await Cluster.connect(started.info)
  const spec = (name: string): VmSpec => ({
    name,
    memory: MEMORY,
    cpus: 1,
    ...(mode === 'template' ? ({ template: true } as unknown as Partial<VmSpec>) : {}),
  })
  const create = async (host: Host, name: string) => {
    const vm = await Vm.create(host, spec(name), { capacityTimeoutMs: 120_000 })
    vm.clusterHosts = cluster.hosts
    return vm
  }
  const next = (h: Host) => cluster.hosts[(cluster.hosts.indexOf(h) + 1) % cluster.hosts.length]
  try {
    // The peer: one VM alone, same steps, same cluster (in template mode its first boot makes host1's template).
    const [alone, bootAlone] = await timed(() => create(cluster.hosts[0], 'alone'))
    const [, execAlone] = await timed(() => alone.succeed('echo ok'))
    const [, migrateAlone] = await timed(() => alone.migrate({ to: next(alone.host) }))
    const [, destroyAlone] = await timed(() => alone.destroy())

    const before = treeMemory()
    const peak = samplePeak()
    const t0 = performance.now()
    const names = Array.from({ length: VMS }, (_, i) => `s${i}`)
    const [vms, boot] = await timed(() => pool(names, CONCURRENCY, (n, i) => create(cluster.hosts[i % HOSTS], n)))
    const [, exec] = await timed(() => pool(vms, CONCURRENCY, vm => vm.succeed(`echo ${vm.name}`)))
    const [, migrate] = await timed(() =>
      pool(vms, Math.max(1, CONCURRENCY / 2), vm => vm.migrate({ to: next(vm.host) })),
    )
    const [, execAfter] = await timed(() => pool(vms, CONCURRENCY, vm => vm.succeed(`echo ${vm.name}`)))
    const moved = vms.filter((vm, i) => vm.host === next(cluster.hosts[i % HOSTS])).length
    const [, destroy] = await timed(() => pool(vms, CONCURRENCY, vm => vm.destroy()))
    const wall = performance.now() - t0
    const top = peak.stop()
    const booked = await Promise.all(cluster.hosts.map(async h => (await h.service('session').capacity()).reservations))

    console.log(`\n${mode === 'template' ? 'from templates' : 'booting'}: ${VMS} VMs × ${MEMORY} on ${HOSTS} hosts`)
    console.log(`  boot      ${s(boot).padStart(8)}  (${s(boot / VMS)} a VM; alone ${s(bootAlone)})`)
    console.log(`  exec      ${s(exec).padStart(8)}  (alone ${(execAlone).toFixed(0)} ms)`)
    console.log(`  migrate   ${s(migrate).padStart(8)}  (${moved}/${VMS} moved; alone ${s(migrateAlone)})`)
    console.log(`  exec      ${s(execAfter).padStart(8)}  after migration`)
    console.log(`  destroy   ${s(destroy).padStart(8)}  (alone ${destroyAlone.toFixed(0)} ms)`)
    console.log(
      `  wall      ${s(wall).padStart(8)}  (alone, all steps: ${s(bootAlone + execAlone + migrateAlone + destroyAlone)})`,
    )
    console.log(`  memory    peak ${mib(top)}; before the VMs ${mib(before)}`)
    if (moved !== VMS) throw new Error(`${VMS - moved} VMs are not on the host they were migrated to`)
    const left = booked.flat()
    if (left.length) throw new Error(`bookings left after destroy: ${JSON.stringify(left)}`)
  } finally {
    await cluster.close()
    await started.stop()
  }
  const stray = processesOf(runDir)
  if (stray.length || existsSync(runDir)) throw new Error(`left behind: pids ${stray.join(', ')}; dir ${runDir}`)
  console.log('  left behind: nothing (no booking, QEMU, agent or run directory)')
}

console.log(`bench:scale (${modes.join(' and ')}; a machine shared with other work gives slower, noisier numbers)`)
for (const mode of modes) await scenario(mode)
