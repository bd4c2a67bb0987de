// vt's migrate() against the same QMP commands written by hand, in the same run, on a 512 MiB guest:
//   idle     — the memtest guest dirtying a single page (its CPU spins, its memory stays put)
//   dirtying — the memtest guest rewriting one byte in every page of 64 MiB, pass after pass
// Three ways, each round in rotating order:
//   raw     hand-written: start the destination QEMU (-S, -incoming defer), qmp_capabilities, events
//           capability on both, parameters, migrate-incoming on port 0, query-migrate for the port, migrate,
//           wait for the MIGRATION completed event, wait until the destination left inmigrate, cont, quit source
//   engine  vt's engine (src/migration/migrate.ts) over the same raw local QEMU processes
//   vt      vm.migrate() on a Vm handle over two real agents (in this process): destination VM created by
//           the agent, QMP through the agents' RPC, source destroyed by its agent
// Wall time is measured from "start the destination" to "source gone, destination running"; downtime and
// total time are QEMU's (query-migrate on the source).
//   npx tsx bench/migration/migrate.ts [--rounds N]

import type { Host } from '../../src/cluster/host.ts'
import { memtestSpec } from '../../src/migration/memtestVm.ts'
import { runMigration } from '../../src/migration/migrate.ts'
import { Vm } from '../../src/vm/index.ts'
import { startAgents } from '../../test/migration/helpers/agents.ts'
import { type LocalVm, localDriver } from '../../test/migration/helpers/localDriver.ts'
import { type LocalQemu, sharedMemtestDisk, startLocalMemtest } from '../../test/migration/helpers/localQemu.ts'

const MiB = 1024 * 1024
const MEMORY = 512
const argRounds = process.argv.indexOf('--rounds')
const rounds = argRounds > 0 ? Number(process.argv[argRounds + 1]) : 5
const PARAMS = { 'max-bandwidth': 4096 * MiB, 'downtime-limit': 300 }
// The agents' VMs run on q35; the raw processes use the same machine type.
const MACHINE = ['-machine', 'q35']

interface Sample {
  wallMs: number
  downtimeMs: number
  totalMs: number
}

type Scenario = { name: string; range: { start: number; end: number } }
const scenarios: Scenario[] = [
  { name: 'idle', range: { start: MiB, end: MiB + 4096 } },
  { name: 'dirtying 64 MiB', range: { start: MiB, end: 65 * MiB } },
]
type Side = 'raw' | 'engine' | 'vt'
const sides: Side[] = ['raw', 'engine', 'vt']

async function localSource(s: Scenario, disk: string): Promise<LocalQemu> {
  const q = await startLocalMemtest({ name: 'bench-src', memoryMiB: MEMORY, range: s.range, disk, extraArgs: MACHINE })
  await q.waitForPasses(5)
  return q
}

async function raw(s: Scenario, disk: string): Promise<Sample> {
  const src = await localSource(s, disk)
  const t0 = performance.now()
  const dest = await startLocalMemtest({
    name: 'bench-dst',
    memoryMiB: MEMORY,
    incoming: true,
    disk,
    extraArgs: ['-S', ...MACHINE],
  })
  try {
    const caps = { capabilities: [{ capability: 'events', state: true }] }
    await Promise.all([
      src.qmp.execute('migrate-set-capabilities', caps),
      dest.qmp.execute('migrate-set-capabilities', caps),
    ])
    await src.qmp.execute('migrate-set-parameters', PARAMS)
    await dest.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' })
    const listen = (await dest.qmp.execute('query-migrate'))['socket-address']?.[0]
    if (listen?.type !== 'inet')
      throw new Error(`the destination reports no TCP listen address: ${JSON.stringify(listen)}`)
    const done = src.qmp.waitForEvent<{ status: string }>('MIGRATION', {
      predicate: d => d.status === 'completed' || d.status === 'failed',
      timeout: 120_000,
    })
    await src.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${listen.port}` })
    const ev = await done
    if (ev.data?.status !== 'completed') throw new Error(`raw migration ${ev.data?.status}`)
    while ((await dest.qmp.execute('query-status')).status === 'inmigrate') await new Promise(r => setTimeout(r, 5))
    await dest.qmp.execute('cont')
    const info = await src.qmp.execute('query-migrate')
    await src.qmp.quit()
    await src.exited
    const wallMs = performance.now() - t0
    return { wallMs, downtimeMs: info.downtime ?? 0, totalMs: info['total-time'] ?? 0 }
  } finally {
    await dest.kill()
    await src.kill()
  }
}

async function engine(s: Scenario, disk: string): Promise<Sample> {
  const vm: LocalVm = { host: 'a', qemu: await localSource(s, disk) }
  try {
    const t0 = performance.now()
    const result = await runMigration(
      localDriver(vm, { memoryMiB: MEMORY, hosts: ['a', 'b'], extraArgs: MACHINE }),
      { to: 'b', parameters: PARAMS },
      vm,
    )
    const wallMs = performance.now() - t0
    return { wallMs, downtimeMs: result.downtimeMs, totalMs: result.totalTimeMs }
  } finally {
    await vm.qemu.kill()
  }
}

let round = 0
async function vt(s: Scenario, hosts: Host[]): Promise<Sample> {
  const vm = await Vm.create(
    hosts[0],
    await memtestSpec({ name: `bench${round++}`, memoryMiB: MEMORY, range: s.range }),
  )
  try {
    await vm.console.waitFor(/B{5}/, { timeout: 30_000 })
    const t0 = performance.now()
    const result = await vm.migrate({ to: hosts[1], hosts, parameters: PARAMS })
    const wallMs = performance.now() - t0
    return { wallMs, downtimeMs: result.downtimeMs, totalMs: result.totalTimeMs }
  } finally {
    await vm.destroy().catch(() => {})
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (n: number) => n.toFixed(0).padStart(7)

const cluster = await startAgents(['a', 'b'])
try {
  console.log(`live migration, ${MEMORY} MiB TCG guest (q35) over loopback, ${rounds} rounds each, medians in ms`)
  console.log('scenario          | side   |    wall | qemu total | wall-total | downtime')
  for (const s of scenarios) {
    const pool = await sharedMemtestDisk(MEMORY)
    // The raw and engine sides boot the same range from their own disk copy.
    const { buildMemtestImage } = await import('../../agent/memtest/image.ts')
    const { copyFile } = await import('node:fs/promises')
    await copyFile(await buildMemtestImage(s.range), pool.path)
    const results: Record<Side, Sample[]> = { raw: [], engine: [], vt: [] }
    for (let i = 0; i < rounds; i++) {
      const order = [...sides.slice(i % 3), ...sides.slice(0, i % 3)]
      for (const side of order) {
        results[side].push(
          side === 'raw'
            ? await raw(s, pool.path)
            : side === 'engine'
              ? await engine(s, pool.path)
              : await vt(s, cluster.hosts),
        )
      }
    }
    await pool.remove()
    for (const side of sides) {
      const r = results[side]
      console.log(
        `${s.name.padEnd(17)} | ${side.padEnd(6)} | ${fmt(median(r.map(x => x.wallMs)))} | ${fmt(median(r.map(x => x.totalMs)))}    | ${fmt(median(r.map(x => x.wallMs - x.totalMs)))}    | ${fmt(median(r.map(x => x.downtimeMs)))}`,
      )
    }
    // QEMU's own transfer time varies with how much the guest dirtied meanwhile; wall minus QEMU's total time
    // is the orchestration around it (destination start, configuration, resume, source shutdown).
    for (const side of ['engine', 'vt'] as const) {
      const overhead = median(results[side].map(x => x.wallMs)) - median(results.raw.map(x => x.wallMs))
      const around =
        median(results[side].map(x => x.wallMs - x.totalMs)) - median(results.raw.map(x => x.wallMs - x.totalMs))
      console.log(
        `${s.name.padEnd(17)} | ${side} over raw: ${overhead.toFixed(0)} ms wall, ${around.toFixed(0)} ms outside QEMU's transfer (goal ≤ 300 ms)`,
      )
    }
  }
} finally {
  await cluster.stop()
}
