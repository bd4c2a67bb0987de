// Faults against real processes: the agent killed (-9) during a call, the agent frozen (heartbeats), the
// link dropped (reconnect resumes the session), the controller killed (-9) or frozen (the agent reaps the
// session's processes and files within the lease), and an agent restart after a crash (leftovers reaped, by
// the dead agent's keeper or at the restart, but never a process whose pid was reused).
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Host } from '../../src/cluster/host.ts'
import { VtRemoteError } from '../../src/protocol/errors.ts'
import { readStat } from '../../src/util/proc.ts'
import { alive, assertNoLeak, startTestAgent, waitFor } from './helpers.ts'

const CONTROLLER = resolve(fileURLToPath(import.meta.url), '../scripts/controller.ts')

function startController(
  url: string,
  token: string,
  root: string,
): Promise<{ child: ChildProcess; pids: { spawned: number; exec: number; session: string } }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CONTROLLER], {
    env: { ...process.env, VT_URL: url, VT_TOKEN: token, VT_ROOT: root, VT_LEASE: '2' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((res, rej) => {
    let out = ''
    child.once('exit', c => rej(new Error(`controller exited ${c}`)))
    child.stdout?.on('data', d => {
      out += d
      if (out.includes('\n')) {
        child.removeAllListeners('exit')
        res({ child, pids: JSON.parse(out.split('\n')[0]) })
      }
    })
  })
}

test('kill -9 of the agent during a call: the call fails within 5 s naming the host and the call; a restart reaps the leftovers', async () => {
  const agent = await startTestAgent()
  const client = await agent.connect()
  const host = new Host(client, agent.url)
  const p = await host.spawn('sleep 1000')
  const inFlight = host.exec(`echo $$ > ${agent.root}/x.pid; exec sleep 1000`)
  inFlight.catch(() => {}) // it rejects while we wait for the agent to die; asserted below
  await waitFor(() => existsSync(`${agent.root}/x.pid`), 5000, 'exec to start')
  const started = Date.now()
  await agent.kill9()
  await assert.rejects(inFlight, (e: unknown) => {
    assert.ok(e instanceof VtRemoteError)
    assert.equal(e.name, 'ConnectionLostError')
    assert.match(e.message, /^testhost: exec\.run: connection to agent lost/)
    return true
  })
  const failedAfter = Date.now() - started
  assert.ok(failedAfter < 5000, `failed after ${failedAfter} ms`)
  // The agent died without reaping, but its keeper did: its children are gone without waiting for a restart.
  assert.equal(alive(p.pid), false)

  const again = await startTestAgent({ dir: agent.dir, token: agent.token })
  const execPid = Number(readFileSync(`${agent.root}/x.pid`, 'utf8'))
  await waitFor(() => !alive(p.pid) && !alive(execPid), 5000, 'spawned and exec processes reaped')
  assert.match(again.log(), /reaping leftovers of a previous run/) // by the keeper, into the same log
  // The old session is gone: the client cannot resume it and says so.
  await assert.rejects(
    host.exec('true'),
    (e: unknown) => e instanceof VtRemoteError && /session lost|expired|the agent is gone/.test(e.message),
  )
  await client.close()
  await again.dispose()
  assertNoLeak(again)
})

test('a frozen agent is detected by heartbeats: the in-flight call fails, the client resumes when it thaws', async () => {
  const agent = await startTestAgent()
  const client = await agent.connect({ deadAfterMs: 1500 })
  const host = new Host(client, agent.url)
  const session = client.session.id
  const inFlight = host.exec('sleep 5')
  await new Promise(r => setTimeout(r, 200))
  process.kill(agent.pid, 'SIGSTOP')
  const started = Date.now()
  await assert.rejects(inFlight, /testhost: exec\.run: connection to agent lost/)
  const after = Date.now() - started
  assert.ok(after < 5000, `detected after ${after} ms`)
  process.kill(agent.pid, 'SIGCONT')
  assert.equal(await host.succeed('echo back'), 'back\n')
  assert.equal(client.session.id, session)
  assert.equal(client.session.resumed, true)
  await client.close()
  await agent.dispose()
  assertNoLeak(agent)
})

test('a dropped link: in-flight calls fail naming host and call, the next call resumes the same session', async () => {
  const agent = await startTestAgent()
  const client = await agent.connect()
  const host = new Host(client, agent.url)
  const p = await host.spawn('sleep 1000')
  const inFlight = host.exec('sleep 2')
  await new Promise(r => setTimeout(r, 100))
  const states: string[] = []
  client.onLinkState(e => states.push(e.state))
  client.breakLink()
  await assert.rejects(inFlight, /testhost: exec\.run: connection to agent lost/)
  const resources = await client.service('session').resources()
  assert.ok(
    resources.some(r => r.pid === p.pid),
    'the session (and its process) survived the broken link',
  )
  assert.equal(client.session.resumed, true)
  assert.deepEqual(states, ['reconnecting', 'connected'])
  assert.ok(alive(p.pid))
  await client.close()
  assert.deepEqual(states, ['reconnecting', 'connected', 'closed'])
  await waitFor(() => !alive(p.pid), 3000, 'process reaped at close')
  await agent.dispose()
  assertNoLeak(agent)
})

for (const how of ['SIGKILL', 'SIGSTOP'] as const) {
  test(`${how} of the controller: the agent reaps the session's processes and files within the lease`, async () => {
    const agent = await startTestAgent()
    const { child, pids } = await startController(agent.url, agent.token, agent.root)
    assert.ok(alive(pids.spawned) && alive(pids.exec))
    assert.ok(existsSync(join(agent.root, 'session-file.txt')))
    const started = Date.now()
    process.kill(child.pid as number, how)
    await waitFor(() => !alive(pids.spawned) && !alive(pids.exec), 5000, 'session processes reaped')
    const took = Date.now() - started
    assert.ok(took < 5000, `reaped after ${took} ms (lease 2 s)`)
    assert.equal(existsSync(join(agent.root, 'session-file.txt')), false)
    assert.match(agent.log(), /session closing .*reason="lease expired"/)
    if (how === 'SIGSTOP') child.kill('SIGKILL')
    await new Promise(r => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)))
    await agent.dispose()
    assertNoLeak(agent)
  })
}

test('a restart never kills a process whose pid was reused (start time differs)', async () => {
  const agent = await startTestAgent()
  await agent.kill9()
  // A live process of ours, recorded with a wrong start time, as if its pid had been reused since.
  const victim = spawn('sleep', ['1000'], { stdio: 'ignore' })
  const stat = readStat(victim.pid as number)
  assert.ok(stat)
  mkdirSync(join(agent.stateDir, 'sessions'), { recursive: true })
  writeFileSync(
    join(agent.stateDir, 'sessions', 'fake.json'),
    JSON.stringify({
      id: 'fake',
      createdAt: Date.now(),
      agentPid: 1,
      records: [
        {
          id: 'r1',
          kind: 'process',
          pid: victim.pid,
          startTime: stat.startTime - 1,
          group: true,
          createdAt: Date.now(),
        },
      ],
    }),
  )
  const again = await startTestAgent({ dir: agent.dir, token: agent.token })
  await waitFor(() => !existsSync(join(agent.stateDir, 'sessions', 'fake.json')), 5000, 'leftover record handled')
  assert.ok(alive(victim.pid as number), 'the unrelated process must survive')
  victim.kill('SIGKILL')
  await again.dispose()
  assertNoLeak(again)
})

test('a second agent on the same state dir is refused', async () => {
  const agent = await startTestAgent()
  await assert.rejects(startTestAgent({ dir: agent.dir }), /another agent \(pid \d+\) uses state dir/)
  await agent.dispose()
  assertNoLeak(agent)
})
