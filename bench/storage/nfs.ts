// NFS pool throughput against a local dir, on the embedded cluster's own NFS server (nfs-ganesha in the storage
// namespace, QEMU's libnfs client in a host's namespace): write = a full copy of a raw image INTO the pool, read
// = a full copy OUT of it into a dir pool. Each through vt (pool.create({ from }), the agent's qemu-img) and
// through the plain command a user would run on the host (qemu-img convert to/from the nfs:// URL, cp for the
// local dir), all in the same run, best of --rounds.
//   npm run bench:storage:nfs [-- --mib N] [--rounds N]
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { Cluster } from '../../src/cluster/cluster.ts'
import { startCluster } from '../../src/cluster/embedded.ts'
import type { Host } from '../../src/cluster/host.ts'
import type { Image, Pool } from '../../src/storage/pool.ts'

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const MIB = arg('--mib', 256)
const ROUNDS = arg('--rounds', 3)

interface Row {
  what: string
  ms: number
}

interface Case {
  what: string
  run(): Promise<void>
  cleanup(): Promise<void>
}

/** Rounds outermost, so that a change of machine load hits every case alike; the best round of each counts. */
async function measureAll(cases: Case[], rounds: number): Promise<Row[]> {
  const best = cases.map(() => Number.POSITIVE_INFINITY)
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of cases.entries()) {
      const t = performance.now()
      await c.run()
      best[i] = Math.min(best[i], performance.now() - t)
      await c.cleanup()
    }
  }
  return cases.map((c, i) => ({ what: c.what, ms: best[i] }))
}

async function main(): Promise<void> {
  const out = mkdtempSync(join(os.tmpdir(), 'vt-bench-nfs-'))
  const started = await startCluster(
    { hosts: 1, storage: { pools: { local: { type: 'dir' }, shared: { type: 'nfs' } } } },
    { project: { name: 'bench-nfs', outputDir: out } as never, config: {} as never },
  )
  const cluster = await Cluster.connect(started.info)
  const rows: Row[] = []
  try {
    const host: Host = cluster.hosts[0]
    const local: Pool = cluster.pool('local')
    const shared: Pool = cluster.pool('shared')
    // The source: random bytes (no zero detection shortcut), in the dir pool, and the same on NFS for reads.
    const src: Image = await local.create('src.raw', { size: `${MIB}M`, format: 'raw' })
    const srcFile = (await src.info()).filename
    await host.succeed(['dd', 'if=/dev/urandom', `of=${srcFile}`, 'bs=1M', `count=${MIB}`, 'conv=notrunc,fsync'], {
      timeout: 120_000,
    })
    const nfsSrc = await shared.create('src.raw', { from: src, format: 'raw' })
    const nfsSrcUrl = (await nfsSrc.info()).filename
    const dir = srcFile.slice(0, srcFile.lastIndexOf('/'))
    const nfsDir = nfsSrcUrl.slice(0, nfsSrcUrl.lastIndexOf('/'))
    const rm = (name: string) => async () => {
      await local.volume(name).remove()
    }
    const rmNfs = (name: string) => async () => {
      await shared.volume(name).remove()
    }
    const sh = (cmd: string[]) => host.succeed(cmd, { timeout: 300_000 }).then(() => undefined)
    const convert = ['qemu-img', 'convert', '-f', 'raw', '-O', 'raw']

    const cases: Case[] = []
    const measure = (what: string, run: () => Promise<void>, cleanup: () => Promise<void>) =>
      cases.push({ what, run, cleanup })
    // Writes: into the NFS pool, and into the local dir for comparison.
    measure(
      'write nfs   vt pool.create({ from })',
      () => shared.create('w.raw', { from: src, format: 'raw' }).then(() => {}),
      rmNfs('w.raw'),
    )
    measure(
      'write nfs   qemu-img convert -> nfs://',
      () => sh([...convert, srcFile, `${nfsDir}/p.raw`]),
      rmNfs('p.raw'),
    )
    measure(
      'write dir   vt pool.create({ from })',
      () => local.create('w.raw', { from: src, format: 'raw' }).then(() => {}),
      rm('w.raw'),
    )
    measure(
      'write dir   cp',
      () => sh(['cp', srcFile, `${dir}/c.raw`]),
      () => sh(['rm', '-f', `${dir}/c.raw`]),
    )
    // Reads: out of the NFS pool into the dir pool, and a local copy for comparison.
    measure(
      'read  nfs   vt pool.create({ from })',
      () => local.create('r.raw', { from: nfsSrc, format: 'raw' }).then(() => {}),
      rm('r.raw'),
    )
    measure(
      'read  nfs   qemu-img convert nfs:// ->',
      () => sh([...convert, nfsSrcUrl, `${dir}/q.raw`]),
      () => sh(['rm', '-f', `${dir}/q.raw`]),
    )
    measure(
      'read  dir   qemu-img convert',
      () => sh([...convert, srcFile, `${dir}/q.raw`]),
      () => sh(['rm', '-f', `${dir}/q.raw`]),
    )
    measure(
      'read  dir   cp',
      () => sh(['cp', srcFile, `${dir}/c.raw`]),
      () => sh(['rm', '-f', `${dir}/c.raw`]),
    )
    rows.push(...(await measureAll(cases, ROUNDS)))
  } finally {
    await cluster.close()
    await started.stop()
    rmSync(out, { recursive: true, force: true })
  }
  process.stdout.write(
    `NFS pool vs local dir: ${MIB} MiB of random data, best of ${ROUNDS} rounds (one host, embedded NFS server)\n`,
  )
  for (const r of rows) {
    process.stdout.write(
      `  ${r.what.padEnd(42)} ${(r.ms / 1000).toFixed(2).padStart(6)} s  ${((MIB * 1000) / r.ms).toFixed(0).padStart(5)} MiB/s\n`,
    )
  }
}

main().catch(e => {
  process.stderr.write(`${(e as Error).stack}\n`)
  process.exit(1)
})
