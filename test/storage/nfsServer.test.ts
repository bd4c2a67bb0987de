// The embedded NFS server (nfs-ganesha in a storage namespace) and the agent's NFSv3 metadata client, without
// agents: two host namespaces write and read the same export through QEMU's own NFS client (qemu-io), the
// metadata client lists, looks up, removes and measures what they made, and a stopped server is a clear error.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { withNfs } from '../../agent/storage/nfsClient.ts'
import { startCluster } from '../../src/cluster/embedded.ts'
import { createUnderlay, underlayNames } from '../../src/cluster/netns.ts'
import { missingNfsServerParts, startNfsServer } from '../../src/cluster/nfsServer.ts'
import { claimSubnet, type RunRecord, reapRun, withRunLock, writeRunRecord } from '../../src/cluster/runs.ts'
import { startTimeOf } from '../../src/util/proc.ts'
import { namespaces } from '../cluster/helpers.ts'
import { requires } from '../helpers/requirements.ts'

const inNs = (ns: string, ...argv: string[]) =>
  execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', timeout: 60_000 })

test('embedded NFS server: two host namespaces share one export; list, lookup, remove and capacity over NFS; a stopped server is a clear error', async t => {
  if (!requires(t, 'netns', 'qemu')) return
  assert.deepEqual(missingNfsServerParts(), [], 'vt setup installs the NFS server (src/cli/debian-packages.txt)')
  // A run record first, as the embedded cluster writes it: a crash of this test is reaped by the next run.
  const runId = `7e${Math.floor(Math.random() * 0xffff)
    .toString(16)
    .padStart(4, '0')}`
  const baseDir = mkdtempSync(join(os.tmpdir(), `vt-cluster-${runId}-`))
  const record: RunRecord = {
    runId,
    pid: process.pid,
    startTime: startTimeOf(process.pid),
    namespaces: [],
    baseDir,
    octet: 0,
  }
  let octet = 0
  await withRunLock(async () => {
    octet = await claimSubnet(runId)
    record.octet = octet
    Object.assign(record, underlayNames(runId, 2, true))
    writeRunRecord(record)
  })
  t.after(async () => {
    await withRunLock(() => reapRun(record))
    assert.deepEqual(
      namespaces().filter(n => n.includes(runId)),
      [],
      'no namespace left',
    )
    assert.equal(existsSync(baseDir), false, 'the server dir is gone')
  })
  const underlay = await createUnderlay(runId, 2, octet, true)
  const storage = underlay.storage
  assert.ok(storage)
  const server = await startNfsServer({ netns: storage.netns, address: storage.address, dir: join(baseDir, 'nfs') })
  const url = (name: string) => `nfs://${server.address}${server.export}/${name}`
  const [h1, h2] = underlay.hosts.map(h => h.netns)

  inNs(h1, 'qemu-img', 'create', '-q', '-f', 'qcow2', url('a.qcow2'), '16M')
  inNs(h1, 'qemu-io', '-c', 'write -P 0x5a 1M 2M', url('a.qcow2'))
  // The other host reads what the first wrote (and a pattern mismatch would make qemu-io say so).
  const read = inNs(h2, 'qemu-io', '-c', 'read -P 0x5a 1M 2M', url('a.qcow2'))
  assert.match(read, /read 2097152\/2097152 bytes/)
  assert.doesNotMatch(read, /Pattern verification failed/)
  assert.match(inNs(h1, 'qemu-io', '-c', 'read -P 0x5a 1M 2M', url('a.qcow2')), /read 2097152/)
  const wrong = spawnSync('ip', ['netns', 'exec', h2, 'qemu-io', '-c', 'read -P 0x11 1M 2M', url('a.qcow2')], {
    encoding: 'utf8',
  })
  assert.match(
    wrong.stdout + wrong.stderr,
    /Pattern verification failed/,
    `qemu-io checks the pattern (exit ${wrong.status}, signal ${wrong.signal})`,
  )
  inNs(h2, 'qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', url('a.qcow2'), url('b.qcow2'))
  assert.match(
    inNs(h1, 'qemu-io', '-c', 'read -P 0x5a 1M 2M', url('b.qcow2')),
    /read 2097152/,
    'a clone reads its base',
  )

  // Entries the metadata client must tell apart: a symlink (out of the export) and a directory.
  symlinkSync('/etc/passwd', join(server.export, 'link'))
  mkdirSync(join(server.export, 'sub'))
  const target = { server: server.address, export: server.export }
  const list = await withNfs(target, c => c.list())
  assert.deepEqual(list.map(e => `${e.name}:${e.type}`).sort(), [
    'a.qcow2:file',
    'b.qcow2:file',
    'link:symlink',
    'sub:dir',
  ])
  const a = list.find(e => e.name === 'a.qcow2')
  assert.ok(a && a.used >= 2 * 1024 * 1024, `a.qcow2 holds the 2 MiB written (${a?.used} bytes allocated)`)
  assert.equal(await withNfs(target, c => c.lookup('none')), undefined)
  const space = await withNfs(target, c => c.fsstat())
  assert.ok(space.totalBytes > 0 && space.availableBytes <= space.totalBytes)
  assert.equal(await withNfs(target, c => c.remove('b.qcow2')), true)
  assert.equal(await withNfs(target, c => c.remove('b.qcow2')), false, 'a second remove finds nothing')
  assert.equal(existsSync(join(server.export, 'b.qcow2')), false)
  await assert.rejects(
    withNfs({ ...target, export: '/etc' }, c => c.list()),
    /export \/etc: mount refused/,
  )

  await server.stop()
  assert.equal(server.exited, undefined, 'a stop is not reported as a crash')
  await assert.rejects(
    withNfs(target, c => c.list()),
    new RegExp(`NFS server ${server.address.replace(/\./g, '\\.')}.*(is the NFS server running|ECONNREFUSED)`),
  )
})

test('clear errors: an nfs pool without a server on remote hosts or without namespaces; missing packages named', async t => {
  const ctx = { project: { name: 'p', outputDir: os.tmpdir() } as never, config: {} as never }
  const pools = { shared: { type: 'nfs' as const } }
  await assert.rejects(
    startCluster({ hosts: [{ name: 'a', url: 'ws://127.0.0.1:9' }], token: { value: 'x' }, storage: { pools } }, ctx),
    /project "p": pool "shared" \(nfs\) names no server; with remote hosts give \{ type: 'nfs', server, export \}/,
  )
  await assert.rejects(
    startCluster({ hosts: 1, isolation: 'none', storage: { pools } }, ctx),
    /pool "shared" \(nfs, no server\) is served by vt's embedded NFS server, which needs network namespaces/,
  )
  if (!requires(t, 'netns')) return
  // A machine without the server's packages (an empty PATH): the error names each with its Debian package.
  const path = process.env.PATH
  process.env.PATH = '/nonexistent'
  try {
    await assert.rejects(
      startNfsServer({ netns: 'none', address: '10.0.0.2', dir: os.tmpdir() }),
      /the embedded NFS server needs ganesha\.nfsd \(Debian package nfs-ganesha\).*install them \(vt setup does\)/,
    )
  } finally {
    process.env.PATH = path
  }
})
