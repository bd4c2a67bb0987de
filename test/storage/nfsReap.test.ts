// The embedded NFS server goes with its run whatever happens: stopped after the agents on a normal stop, and
// after a kill -9 of the controller, removed by the run's watcher with the namespaces (ganesha, rpcbind, their
// directory and the export).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { startCluster } from '../../src/cluster/embedded.ts'
import type { ClusterConfig } from '../../src/config/cluster.ts'
import { alive, waitFor } from '../agent/helpers.ts'
import { leftovers, runIdOf, startHangingRun } from '../cluster/helpers.ts'
import { requires } from '../helpers/requirements.ts'

const out = mkdtempSync(join(os.tmpdir(), 'vt-nfs-reap-'))
after(() => rmSync(out, { recursive: true, force: true }))

const nfsCluster = { hosts: 1, storage: { pools: { shared: { type: 'nfs' } } } } as unknown as ClusterConfig

/** The pids in the run's storage namespace (ganesha and rpcbind), by command name. */
function storageProcesses(runId: string): Map<number, string> {
  const pids = execFileSync('ip', ['netns', 'pids', `vt-${runId}-st`], { encoding: 'utf8' })
  const found = new Map<number, string>()
  for (const pid of pids.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      found.set(pid, readFileSync(`/proc/${pid}/comm`, 'utf8').trim())
    } catch {}
  }
  return found
}

test('a stopped run stops its NFS server and removes its namespace and directory', async t => {
  if (!requires(t, 'netns', 'qemu')) return
  const started = await startCluster(nfsCluster, {
    project: { name: 'nfs-stop', outputDir: join(out, 'stop') } as never,
    config: {} as never,
  })
  const runId = runIdOf(started.info)
  const procs = storageProcesses(runId)
  assert.deepEqual([...procs.values()].sort(), ['ganesha.nfsd', 'rpcbind'])
  await started.stop()
  for (const pid of procs.keys()) assert.equal(alive(pid), false, `pid ${pid} (${procs.get(pid)}) is gone`)
  assert.deepEqual(leftovers(started.info), [])
  assert.equal(existsSync(join(os.tmpdir(), `vt-cluster-${runId}`)), false)
})

test("after a kill -9 of the controller, the run's watcher removes the NFS server with the rest", async t => {
  if (!requires(t, 'netns', 'qemu')) return
  const { info, child } = await startHangingRun({ VT_OUT: join(out, 'crash'), VT_NFS: '1' })
  const runId = runIdOf(info)
  const procs = storageProcesses(runId)
  assert.deepEqual([...procs.values()].sort(), ['ganesha.nfsd', 'rpcbind'])
  assert.ok(existsSync(join(os.tmpdir(), `vt-cluster-${runId}`, 'nfs', 'export')), 'the export is in the run dir')
  child.kill('SIGKILL')
  // A generous bound: the agents first reap their sessions (up to 10 s on a loaded machine); not a timing assert.
  await waitFor(() => leftovers(info).length === 0, 60_000, `leftovers gone: ${leftovers(info).join(', ')}`)
  for (const pid of procs.keys()) assert.equal(alive(pid), false, `pid ${pid} (${procs.get(pid)}) is gone`)
  assert.equal(existsSync(join(os.tmpdir(), `vt-cluster-${runId}`)), false, 'the server dir and export are gone')
})
