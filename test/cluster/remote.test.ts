// Remote hosts: agents started on their own (here: each in a network namespace of the test's, with TLS, as an
// operator would run `vt agent` on a machine) and reached by the controller through a list of hosts in the
// config (startCluster's remote path: wss://, a token, the CA), not the embedded provider. A guest network spans
// them over the hosts' own addresses, and restartAgent is a clear error: these agents are not vt's to restart.
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Cluster } from '../../src/cluster/cluster.ts'
import { type StartedCluster, startCluster } from '../../src/cluster/embedded.ts'
import type { Host } from '../../src/cluster/host.ts'
import { spawnLocalAgent } from '../../src/cluster/localAgent.ts'
import { createUnderlay, listNamespaces, type Underlay } from '../../src/cluster/netns.ts'
import { claimSubnet, type RunRecord, reapRun, withRunLock, writeRunRecord } from '../../src/cluster/runs.ts'
import { startTimeOf } from '../../src/util/proc.ts'
import { machine, requires } from '../helpers/requirements.ts'

const dir = mkdtempSync(join(os.tmpdir(), 'vt-remote-test-'))
const token = randomBytes(24).toString('hex')
const runId = randomBytes(3).toString('hex')
const record: RunRecord = { runId, pid: process.pid, startTime: startTimeOf(process.pid), namespaces: [], agents: [] }
let underlay: Underlay | undefined
const agents: ChildProcess[] = []
let started: StartedCluster | undefined

const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })

/** A CA, and a certificate for each agent's address signed by it. */
function certificates(addresses: string[]): void {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=ca',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  )
  for (const [i, address] of addresses.entries()) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=r${i}`, '-keyout', `r${i}.key`, '-out', `r${i}.csr`)
    writeFileSync(join(dir, `r${i}.ext`), `subjectAltName=IP:${address}\n`)
    openssl(
      'x509',
      '-req',
      '-in',
      `r${i}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `r${i}.ext`,
      '-out',
      `r${i}.crt`,
    )
  }
}

before(async () => {
  if (!machine.netns) return
  // Recorded like an embedded run, so that nobody reaps these namespaces as a dead run's, and we reap them.
  await withRunLock(async () => {
    record.octet = await claimSubnet(runId)
    record.namespaces = [`vt-${runId}-net`, `vt-${runId}-h1`, `vt-${runId}-h2`]
    record.rootLink = `vt${runId}c`
    record.baseDir = dir
    writeRunRecord(record)
  })
  underlay = await createUnderlay(runId, 2, record.octet as number)
  certificates(underlay.hosts.map(h => h.address))
  for (const [i, h] of underlay.hosts.entries()) {
    const agent = await spawnLocalAgent({
      listen: `${h.address}:7443`,
      token,
      stateDir: mkdtempSync(join(dir, `state${i}-`)),
      name: `remote${i + 1}`,
      netns: h.netns,
      quiet: true,
      extraArgs: ['--tls-cert', join(dir, `r${i}.crt`), '--tls-key', join(dir, `r${i}.key`)],
    })
    agents.push(agent.child)
    record.agents?.push({ pid: agent.child.pid as number, startTime: startTimeOf(agent.child.pid as number) ?? 0 })
    writeRunRecord(record)
  }
  started = await startCluster(
    {
      hosts: underlay.hosts.map((h, i) => ({ name: `remote${i + 1}`, url: `wss://${h.address}:7443` })),
      token: { value: token },
      tls: { ca: join(dir, 'ca.crt') },
      networks: { lan: { subnet: '10.78.0.0/24' } },
    },
    { project: { name: 'remote', outputDir: dir } as never, config: {} as never },
  )
})

after(async () => {
  await started?.stop()
  for (const a of agents) a.stdin?.end()
  await Promise.all(agents.map(a => (a.exitCode === null ? new Promise(r => a.once('exit', r)) : undefined)))
  // Under the lock, as an embedded run tears down (see src/cluster/embedded.ts).
  await withRunLock(async () => {
    await underlay?.destroy()
    await reapRun(record)
  })
  rmSync(dir, { recursive: true, force: true })
  if (underlay)
    assert.deepEqual(
      (await listNamespaces()).filter(n => n.includes(runId)),
      [],
      'namespaces left',
    )
  for (const a of agents) assert.notEqual(a.exitCode ?? a.signalCode, null, 'an agent still runs')
})

const pings = async (from: Host, ip: string) =>
  (await from.exec(['busybox', 'ping', '-c', '1', '-W', '2', ip], { timeout: 10_000 })).exitCode === 0

test('remote hosts: a guest network spans agents the controller reaches over wss; restartAgent is refused', async t => {
  if (!requires(t, 'netns') || !started) return
  assert.equal(started.restartAgent, undefined, 'the remote provider restarts nothing')
  const cluster = await Cluster.connect(started.info)
  try {
    const [a, b] = cluster.hosts
    assert.deepEqual(
      [a.name, b.name, a.address, b.address],
      ['remote1', 'remote2', ...(underlay?.hosts.map(h => h.address) ?? [])],
    )
    const lan = cluster.network('lan')
    await lan.attach(a, { ip: '10.78.0.1/24' })
    await lan.attach(b, { ip: '10.78.0.2/24' })
    // Through the VXLAN between the two agents' own addresses.
    assert.equal(await pings(a, '10.78.0.2'), true)
    assert.equal(await pings(b, '10.78.0.1'), true)
    const cut = await cluster.faults.partition(a, b)
    assert.equal(await pings(a, '10.78.0.2'), false)
    await cut.heal()
    assert.equal(await pings(a, '10.78.0.2'), true)
    await assert.rejects(cluster.faults.restartAgent(b), /nothing here can restart that agent/)
    assert.equal(b.client.state, 'connected')
  } finally {
    await cluster.close()
  }
})
