// Storage pools and images through vt against the plain command, in the same run, on one embedded host with a
// dir pool: clone time of a 64 MiB and a 10 GiB base (goal: the same, under 50 ms: an overlay, O(1)), create,
// and backup and restore throughput of random data. vt's numbers include the RPC to the agent and the agent's
// checks (name, confinement of the backing chain, info for the answer); the peer runs here, directly.
//   npm run bench:storage [-- --mib N] [--rounds N]
// Adding a case: one `measure(...)` line below (the NFS rows are bench/storage/nfs.ts, npm run bench:storage:nfs).
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster } from '../../src/cluster/cluster.ts'
import { startCluster } from '../../src/cluster/embedded.ts'

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const MIB = arg('--mib', 256)
const ROUNDS = arg('--rounds', 5)

interface Case {
  group: string
  what: string
  /** MiB moved, for a throughput column. */
  mib?: number
  run(): Promise<unknown> | unknown
  cleanup(): Promise<unknown> | unknown
}

// Asynchronous: a blocked event loop would miss the agent link's pings (and lose the link).
const sh = (...cmd: string[]) => promisify(execFile)(cmd[0], cmd.slice(1))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main(): Promise<void> {
  const out = mkdtempSync(join(os.tmpdir(), 'vt-bench-storage-'))
  const started = await startCluster(
    { hosts: 1, isolation: 'none', storage: { pools: { local: { type: 'dir' } } } },
    { project: { name: 'bench-storage', outputDir: out } as never, config: {} as never },
  )
  const cluster = await Cluster.connect(started.info)
  const results: { c: Case; ms: number[] }[] = []
  try {
    const pool = cluster.pool('local')
    const small = await pool.create('base-64M', { size: '64M' })
    const big = await pool.create('base-10G', { size: '10G' })
    const data = await pool.create('data.raw', { size: `${MIB}M`, format: 'raw' })
    const dataFile = (await data.info()).filename
    const dir = dataFile.slice(0, dataFile.lastIndexOf('/'))
    await sh('dd', 'if=/dev/urandom', `of=${dataFile}`, 'bs=1M', `count=${MIB}`, 'conv=notrunc,fsync')
    const bak = await data.backup(pool, 'data.bak', { format: 'qcow2' })
    const f = (name: string) => join(dir, name)
    const gone = (name: string) => () => rmSync(f(name), { force: true })

    const cases: Case[] = []
    const measure = (c: Case) => cases.push(c)
    for (const [base, size] of [
      [small, '64 MiB'],
      [big, '10 GiB'],
    ] as const) {
      const file = f(base.name)
      measure({
        group: `clone ${size}`,
        what: 'vt image.clone()',
        run: () => base.clone('c'),
        cleanup: () => pool.volume('c').remove(),
      })
      measure({
        group: `clone ${size}`,
        what: 'qemu-img create -b',
        run: () => sh('qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', file, f('p')),
        cleanup: gone('p'),
      })
    }
    measure({
      group: 'create 10 GiB qcow2',
      what: 'vt pool.create()',
      run: () => pool.create('n', { size: '10G' }),
      cleanup: () => pool.volume('n').remove(),
    })
    measure({
      group: 'create 10 GiB qcow2',
      what: 'qemu-img create',
      run: () => sh('qemu-img', 'create', '-q', '-f', 'qcow2', f('p'), '10G'),
      cleanup: gone('p'),
    })
    const g = `backup ${MIB} MiB`
    measure({
      group: g,
      what: 'vt image.backup()',
      mib: MIB,
      run: () => data.backup(pool, 'b', { format: 'qcow2' }),
      cleanup: () => pool.volume('b').remove(),
    })
    measure({
      group: g,
      what: 'qemu-img convert -O qcow2',
      mib: MIB,
      run: () => sh('qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', dataFile, f('p')),
      cleanup: gone('p'),
    })
    measure({ group: g, what: 'cp', mib: MIB, run: () => sh('cp', dataFile, f('p')), cleanup: gone('p') })
    const r = `restore ${MIB} MiB`
    measure({
      group: r,
      what: 'vt image.restoreFrom()',
      mib: MIB,
      run: () => data.restoreFrom(bak, {}),
      cleanup: () => {},
    })
    measure({
      group: r,
      what: 'qemu-img convert -O raw',
      mib: MIB,
      run: () => sh('qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', f('data.bak'), f('p')),
      cleanup: gone('p'),
    })
    for (const c of cases) results.push({ c, ms: [] })
    // Rounds outermost, so that a change of machine load hits every case alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (const x of results) {
        const t = performance.now()
        await x.c.run()
        x.ms.push(performance.now() - t)
        await x.c.cleanup()
      }
    }
    for (const v of ['base-64M', 'base-10G', 'data.raw', 'data.bak']) await pool.volume(v).remove()
  } catch (e) {
    const log = join(out, '.agents', 'host1.log')
    process.stderr.write(
      `the agent's log (${log}):\n${(await import('node:fs')).readFileSync(log, 'utf8').slice(-3000)}\n`,
    )
    throw e
  } finally {
    await cluster.close()
    await started.stop()
    rmSync(out, { recursive: true, force: true })
  }
  process.stdout.write(`storage: a dir pool on one embedded host, ${ROUNDS} rounds (median, best)\n`)
  let group = ''
  for (const { c, ms } of results) {
    if (c.group !== group) process.stdout.write(`${(group = c.group)}\n`)
    const med = median(ms)
    const tp = c.mib ? `  ${((c.mib * 1000) / med).toFixed(0).padStart(5)} MiB/s` : ''
    process.stdout.write(
      `  ${c.what.padEnd(28)} ${med.toFixed(1).padStart(8)} ms  (best ${Math.min(...ms).toFixed(1)} ms)${tp}\n`,
    )
  }
}

main().catch(e => {
  process.stderr.write(`${(e as Error).stack}\n`)
  process.exit(1)
})
