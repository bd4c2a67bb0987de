// bench/vm instant VMs: a VM ready for exec from a warm template of its spec (what the `vm` fixture does) next to a
// boot of the same spec measured in the same run, and vm.restore() of a snapshot in place (and vm.snapshot()).
// Goals (issue 13): template start p50 ≤ 250 ms, restore p50 ≤ 200 ms.
//   node --import tsx bench/vm/instant.ts [--runs 10]
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { AgentClient } from '../../src/cluster/client.ts'
import { Host } from '../../src/cluster/host.ts'
import { spawnLocalAgent } from '../../src/cluster/localAgent.ts'
import type { RestorePhases } from '../../src/protocol/vm.ts'
import { Vm } from '../../src/vm/index.ts'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } })
const RUNS = Number(values.runs)

const root = mkdtempSync(join(tmpdir(), 'vt-bench-instant-'))
const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
  rmSync(root, { recursive: true, force: true })
})

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}
const ms = (x: number) => `${x.toFixed(0)} ms`
const line = (label: string, xs: number[], goal = '') =>
  console.log(
    `  ${label.padEnd(44)} p50 ${ms(quantile(xs, 0.5)).padStart(8)}  p90 ${ms(quantile(xs, 0.9)).padStart(8)}${goal}`,
  )

const token = 'bench-token-0123456789abcdef'
const { url } = await spawnLocalAgent({
  token,
  stateDir: join(root, 'state'),
  name: 'bench',
  quiet: true,
  exitWithStdin: false,
  stdio: ['ignore', 'pipe', 'inherit'],
  onSpawn: c => children.add(c),
})
const client = await AgentClient.connect({ url, token, name: 'bench', leaseSeconds: 30 })
const host = new Host(client, url)
let n = 0
const spec = (template: boolean) => ({ name: `i${n++}`, accel: 'tcg' as const, memory: '256M', template })

// Warm-up: the image, and the template of this spec (built now when this host has none yet).
const first = await Vm.create(host, spec(true))
console.log(`template ${first.info.restored?.name}: ${first.info.restored?.built ? 'built now' : 'found in the cache'}`)
await first.destroy()

console.log(`\nVM ready for exec, ${RUNS} runs each, interleaved (TCG, 1 vCPU, 256 MiB)`)
const boot: number[] = []
const warm: number[] = []
/** The host's split of each start from saved state (QEMU up, state loaded, identity + readiness). */
type Phases = { stopMs: number[]; qemuMs: number[]; loadMs: number[]; identityMs: number[] }
const phases = (): Phases => ({ stopMs: [], qemuMs: [], loadMs: [], identityMs: [] })
const warmPhases = phases()
const restorePhases = phases()
const addPhases = (to: Phases, p: RestorePhases | undefined) => {
  if (!p) return
  if (p.stopMs !== undefined) to.stopMs.push(p.stopMs)
  to.qemuMs.push(p.qemuMs)
  to.loadMs.push(p.loadMs)
  to.identityMs.push(p.identityMs)
}
const showPhases = (p: Phases) =>
  console.log(
    `    on the host, p50: ${p.stopMs.length ? `old QEMU stopped ${ms(quantile(p.stopMs, 0.5))}, ` : ''}QEMU up ${ms(quantile(p.qemuMs, 0.5))}, state loaded ${ms(quantile(p.loadMs, 0.5))}, ` +
      `identity and ready ${ms(quantile(p.identityMs, 0.5))}`,
  )
for (let i = 0; i < RUNS; i++) {
  for (const template of [false, true]) {
    const t0 = performance.now()
    const vm = await Vm.create(host, spec(template))
    const took = performance.now() - t0
    if (template && vm.info.restored?.from !== 'template') throw new Error('the VM did not start from the template')
    if (template) addPhases(warmPhases, vm.info.restored?.phases)
    await vm.succeed('true')
    ;(template ? warm : boot).push(took)
    await vm.destroy()
  }
}
line('boot (peer): Vm.create() without a template', boot)
line('from the warm template: Vm.create()', warm, '   (goal p50 ≤ 250 ms)')
showPhases(warmPhases)
console.log(`  speed-up of medians: ${(quantile(boot, 0.5) / quantile(warm, 0.5)).toFixed(1)}×`)

console.log(`\nsnapshot and restore in place, ${RUNS} runs`)
const vm = await Vm.create(host, spec(true))
const snap: number[] = []
const restore: number[] = []
for (let i = 0; i < RUNS; i++) {
  await vm.succeed(`echo ${i} > /tmp/step`)
  let t0 = performance.now()
  await vm.snapshot(`s${i}`)
  snap.push(performance.now() - t0)
  await vm.succeed('echo dirty > /tmp/step')
  t0 = performance.now()
  await vm.restore(`s${i}`)
  restore.push(performance.now() - t0)
  addPhases(restorePhases, vm.info.restored?.phases)
  if ((await vm.succeed('cat /tmp/step')).trim() !== String(i))
    throw new Error('the restore did not bring back the state')
}
line('vm.snapshot() (guest paused meanwhile)', snap)
line('vm.restore() to ready for exec', restore, '   (goal p50 ≤ 200 ms)')
showPhases(restorePhases)
console.log(
  `  saved state: ${(vm.info.memoryMiB ? (await host.service('vm').snapshot(vm.name, 'size')).stateBytes / 2 ** 20 : 0).toFixed(0)} MiB for ${vm.info.memoryMiB} MiB of guest memory`,
)
await vm.destroy()

await client.close()
process.exit(0)
