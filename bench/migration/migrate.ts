// vt's migrate() against the same QMP commands written by hand, in the same run, on a 512 MiB guest:
//   idle     — no disk, the firmware finds nothing to boot and waits: almost every page is zero
//   dirtying — the memtest guest rewrites one byte in every page of 64 MiB, pass after pass
// Both sides start the destination QEMU paused with -incoming defer, set the same capabilities and
// parameters, migrate over loopback, resume the destination and shut the source down. Wall time covers
// exactly that; downtime is what QEMU reports (query-migrate on the source).
//   npx tsx bench/migration/migrate.ts [--rounds N]
import { runMigration } from '../../src/migration/migrate.ts'
import type { MigrationInfo } from '../../src/qmp/index.ts'
import { type LocalVm, localDriver } from '../../test/migration/helpers/localDriver.ts'
import { type LocalQemu, startLocalMemtest } from '../../test/migration/helpers/localQemu.ts'

const MiB = 1024 * 1024
const MEMORY = 512
const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 5
const PARAMS = { 'max-bandwidth': 4096 * MiB, 'downtime-limit': 300 }

interface Sample {
  wallMs: number
  downtimeMs: number
  totalMs: number
}

type Scenario = { name: string; noDisk: boolean }
const scenarios: Scenario[] = [
  { name: 'idle', noDisk: true },
  { name: 'dirtying 64 MiB', noDisk: false },
]

async function source(s: Scenario): Promise<LocalQemu> {
  const q = await startLocalMemtest({
    name: 'bench-src',
    memoryMiB: MEMORY,
    noDisk: s.noDisk,
    range: { start: MiB, end: 65 * MiB },
  })
  if (!s.noDisk) await q.waitForPasses(5)
  else await new Promise(r => setTimeout(r, 500))
  return q
}

/** The hand-written sequence: what a careful person types into two QMP monitors. */
async function raw(s: Scenario, src: LocalQemu): Promise<{ sample: Sample; dest: LocalQemu }> {
  const t0 = performance.now()
  const dest = await startLocalMemtest({
    name: 'bench-dst',
    memoryMiB: MEMORY,
    incoming: true,
    extraArgs: ['-S'],
    ...(s.noDisk ? { noDisk: true } : { disk: src.disk }),
  })
  const caps = { capabilities: [{ capability: 'events', state: true }] }
  await Promise.all([
    src.qmp.execute('migrate-set-capabilities', caps),
    dest.qmp.execute('migrate-set-capabilities', caps),
  ])
  await src.qmp.execute('migrate-set-parameters', PARAMS)
  await dest.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' })
  const incoming = (await dest.qmp.execute('query-migrate')) as MigrationInfo & { 'socket-address': { port: string }[] }
  const done = src.qmp.waitForEvent<{ status: string }>('MIGRATION', {
    predicate: d => d.status === 'completed' || d.status === 'failed',
    timeout: 120_000,
  })
  await src.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${incoming['socket-address'][0].port}` })
  const ev = await done
  if (ev.data?.status !== 'completed') throw new Error(`raw migration ${ev.data?.status}`)
  while ((await dest.qmp.execute('query-status')).status === 'inmigrate') await new Promise(r => setTimeout(r, 5))
  await dest.qmp.execute('cont')
  const info = await src.qmp.execute('query-migrate')
  await src.qmp.quit()
  const wallMs = performance.now() - t0
  await src.kill()
  return { sample: { wallMs, downtimeMs: info.downtime ?? 0, totalMs: info['total-time'] ?? 0 }, dest }
}

async function vt(s: Scenario, src: LocalQemu): Promise<{ sample: Sample; dest: LocalQemu }> {
  const vm: LocalVm = { host: 'a', qemu: src }
  const t0 = performance.now()
  const result = await runMigration(
    localDriver(vm, { memoryMiB: MEMORY, hosts: ['a', 'b'], noDisk: s.noDisk }),
    { to: 'b', parameters: PARAMS },
    vm,
  )
  const wallMs = performance.now() - t0
  return { sample: { wallMs, downtimeMs: result.downtimeMs, totalMs: result.totalTimeMs }, dest: vm.qemu }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (n: number) => n.toFixed(0).padStart(6)

console.log(`live migration, ${MEMORY} MiB TCG guest over loopback, ${rounds} rounds each, medians in ms`)
console.log('scenario          | side | wall   | qemu total | wall-total | downtime')
for (const s of scenarios) {
  const results: Record<'raw' | 'vt', Sample[]> = { raw: [], vt: [] }
  for (let i = 0; i < rounds; i++) {
    // Alternate the order so neither side always runs on a warmer machine.
    for (const side of i % 2 === 0 ? (['raw', 'vt'] as const) : (['vt', 'raw'] as const)) {
      const src = await source(s)
      const { sample, dest } = await (side === 'raw' ? raw(s, src) : vt(s, src))
      results[side].push(sample)
      await dest.kill()
      await src.kill()
    }
  }
  for (const side of ['raw', 'vt'] as const) {
    const r = results[side]
    console.log(
      `${s.name.padEnd(17)} | ${side.padEnd(4)} | ${fmt(median(r.map(x => x.wallMs)))} | ${fmt(median(r.map(x => x.totalMs)))}     | ${fmt(median(r.map(x => x.wallMs - x.totalMs)))}     | ${fmt(median(r.map(x => x.downtimeMs)))}`,
    )
  }
  const overhead = median(results.vt.map(x => x.wallMs)) - median(results.raw.map(x => x.wallMs))
  // QEMU's own transfer time varies run to run with the guest's dirtying; wall minus QEMU's total time is the
  // orchestration around it (starting the destination, configuring, resuming, shutting the source down).
  const around = median(results.vt.map(x => x.wallMs - x.totalMs)) - median(results.raw.map(x => x.wallMs - x.totalMs))
  console.log(
    `${s.name.padEnd(17)} | vt overhead: ${overhead.toFixed(0)} ms on wall time, ${around.toFixed(0)} ms outside QEMU's transfer (goal ≤ 300 ms)`,
  )
}
