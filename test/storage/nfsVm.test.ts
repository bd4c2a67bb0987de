// VMs on nfs volumes against the embedded cluster's real NFS server: a VM whose disk is in the nfs pool migrates
// to the other host without copying a byte of disk and finds its data there; and the NFS server killed under a
// VM's I/O: the I/O stalls (QEMU's NFS client retries), pool calls fail naming the server, vt says the server
// died, the VM is still destroyed and nothing of the run is left.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { Cluster } from '../../src/cluster/cluster.ts'
import { type StartedCluster, startCluster } from '../../src/cluster/embedded.ts'
import type { ClusterConfig } from '../../src/config/cluster.ts'
import { Vm } from '../../src/vm/vm.ts'
import { leftovers, runIdOf } from '../cluster/helpers.ts'
import { requires } from '../helpers/requirements.ts'

const out = mkdtempSync(join(os.tmpdir(), 'vt-nfs-vm-'))

const config: ClusterConfig = { hosts: 2, storage: { pools: { shared: { type: 'nfs' } } } }
const MiB = 1024 * 1024

// One cluster for both tests (a start costs seconds); the test that kills its NFS server comes last.
let shared: { started: StartedCluster; cluster: Cluster; runId: string } | undefined
async function nfsCluster() {
  if (!shared) {
    const started = await startCluster(config, {
      project: { name: 'nfs-vm', outputDir: out } as never,
      config: {} as never,
    })
    const cluster = await Cluster.connect(started.info).catch(async e => {
      await started.stop()
      throw e
    })
    shared = { started, cluster, runId: runIdOf(started.info) }
  }
  return shared
}
after(async () => {
  if (!shared) return
  await shared.cluster.close()
  await shared.started.stop()
  assert.deepEqual(leftovers(shared.started.info), [], 'nothing of the run is left')
  rmSync(out, { recursive: true, force: true })
})

/** QEMU processes of this run (their command lines name the run's directory). */
function qemus(runId: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', `qemu-system-x86_64.*vt-cluster-${runId}`], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
}

test('a VM whose disk is in the nfs pool migrates without copying its disk', { timeout: 300_000 }, async t => {
  if (!requires(t, 'netns', 'qemu')) return
  const { cluster } = await nfsCluster()
  const [h1, h2] = cluster.hosts
  const disk = await cluster.pool('shared').create('data.qcow2', { size: '64M', format: 'qcow2' })
  const vm = await Vm.create(h1, {
    name: 'nfs-mig',
    image: 'tiny',
    memory: 128,
    disks: [{ volume: disk.ref, id: 'data', bus: 'virtio' }],
  })
  try {
    await vm.succeed('dd if=/dev/urandom of=/dev/vda bs=1M count=8 conv=fsync status=none')
    const sum = await vm.succeed('dd if=/dev/vda bs=1M count=8 status=none | md5sum')
    const result = await vm.migrate({ to: h2 })
    assert.equal(result.status, 'completed')
    assert.equal(result.storage, 'shared')
    assert.equal(result.storageBytes, 0, 'no disk bytes were sent: both hosts open the same nfs:// volume')
    assert.equal(vm.host, h2)
    assert.match((await vm.refresh()).disks.map(d => d.file).join(' '), /nfs:\/\//)
    assert.equal(await vm.succeed('dd if=/dev/vda bs=1M count=8 status=none | md5sum'), sum)
    // The data is on the export, not only in the guest's cache: host1 reads the volume itself.
    const info = await disk.info()
    assert.ok(info.actualSize >= 8 * MiB, `the volume holds the 8 MiB written (${info.actualSize} bytes allocated)`)
  } finally {
    await vm.destroy()
  }
})

test('the NFS server killed under a VM writing: I/O stalls, pool calls name the server, the VM is destroyed, nothing leaks', {
  timeout: 300_000,
}, async t => {
  if (!requires(t, 'netns', 'qemu')) return
  const { cluster, runId } = await nfsCluster()
  const [h1] = cluster.hosts
  const pool = cluster.pool('shared')
  const disk = await pool.create('io.qcow2', { size: '64M', format: 'qcow2' })
  const vm = await Vm.create(h1, {
    name: 'nfs-io',
    image: 'tiny',
    memory: 128,
    disks: [{ volume: disk.ref, id: 'data', bus: 'virtio' }],
  })
  await vm.succeed('dd if=/dev/urandom of=/dev/vda bs=1M count=4 conv=fsync status=none')
  // A writer that keeps the disk busy, then the server dies under it.
  await vm.succeed(
    '(while :; do dd if=/dev/urandom of=/dev/vda bs=64k count=64 conv=fsync status=none; done) >/dev/null 2>&1 &',
  )
  const pids = execFileSync('ip', ['netns', 'pids', `vt-${runId}-st`], { encoding: 'utf8' })
    .split(/\s+/)
    .filter(Boolean)
  const ganesha = pids.find(p => readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'ganesha.nfsd')
  assert.ok(ganesha, 'the NFS server runs in the storage namespace')
  const said: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((s: string | Uint8Array, ...rest: never[]) => {
    said.push(String(s))
    return write(s, ...rest)
  }) as typeof process.stderr.write
  try {
    process.kill(Number(ganesha), 'SIGKILL')
    // Pool calls fail at once with an error naming the server.
    await assert.rejects(pool.list(), /pool "shared": .*NFS server 10\.213\.\d+\.2/)
    // The guest's I/O stalls rather than fails: a synced write does not complete.
    await assert.rejects(vm.exec('dd if=/dev/zero of=/dev/vda bs=4k count=1 conv=fsync', { timeout: 5_000 }))
  } finally {
    process.stderr.write = write
  }
  assert.match(said.join(''), /the embedded NFS server \(10\.213\.\d+\.2, pid \d+\) exited with SIGKILL/)
  // The VM is still destroyed (QEMU is killed, whatever its pending NFS I/O) and no QEMU of the run is left.
  assert.ok(qemus(runId).length > 0)
  await vm.destroy()
  assert.deepEqual(qemus(runId), [])
})
