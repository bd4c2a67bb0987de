// The embedded NFS server goes with its run whatever happens: stopped after the agents on a normal stop, and
// after a kill -9 of the controller, removed by the run's watcher with the namespaces (ganesha, rpcbind, their
// directory and the export). And an agent killed with -9: its keeper removes the session's nfs volumes over NFS.
import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { startCluster } from '../../src/cluster/embedded.ts'
import type { ClusterConfig } from '../../src/config/cluster.ts'
import { alive, assertNoLeak, startTestAgent, waitFor } from '../agent/helpers.ts'
import { leftovers, runIdOf, startHangingRun } from '../cluster/helpers.ts'
import { requires } from '../helpers/requirements.ts'

const CONTROLLER = resolve(fileURLToPath(import.meta.url), '../scripts/nfs-volume-controller.ts')
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

test("an agent killed with -9: its keeper removes the session's nfs volumes over NFS", async t => {
  if (!requires(t, 'netns', 'qemu')) return
  // The run's NFS server, reached from an agent in the root namespace through the controller's veth.
  const started = await startCluster(nfsCluster, {
    project: { name: 'nfs-keeper', outputDir: join(out, 'keeper') } as never,
    config: {} as never,
  })
  const agent = await startTestAgent()
  let controller: ChildProcess | undefined
  try {
    const def = started.info.pools?.shared
    assert.ok(def?.type === 'nfs' && def.export)
    controller = spawn(process.execPath, ['--import', 'tsx', CONTROLLER], {
      env: { ...process.env, VT_URL: agent.url, VT_TOKEN: agent.token, VT_POOL: JSON.stringify(def) },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const names = await new Promise<string[]>((res, rej) => {
      let buf = ''
      controller?.once('exit', c => rej(new Error(`the controller exited with ${c}`)))
      controller?.stdout?.on('data', d => {
        buf += d
        if (buf.includes('\n')) res(JSON.parse(buf.split('\n')[0]).names)
      })
    })
    const files = names.map(n => join(def.export as string, n))
    assert.ok(
      files.every(f => existsSync(f)),
      'the volumes are on the export',
    )
    writeFileSync(join(def.export, 'not-ours'), 'made by no session')
    await agent.kill9()
    assert.deepEqual(
      files.filter(f => existsSync(f)),
      [],
      'the keeper removed the volumes over NFS',
    )
    assert.ok(existsSync(join(def.export, 'not-ours')), 'a file no session made stays')
  } finally {
    controller?.kill('SIGKILL')
    await agent.dispose()
    await started.stop()
  }
  assertNoLeak(agent)
  assert.deepEqual(leftovers(started.info), [])
})
