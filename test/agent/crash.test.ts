// What an agent leaves when things die around it. Its log pipe breaking (the controller that read its stderr
// died) must not kill it: it still reaps its sessions when its stdin closes. When the agent itself is killed
// with -9, its keeper reaps what its sessions started (host.spawn trees, a running host.exec) at once, not at
// the agent's next start; with a cgroup, even a process that escaped its group and tree dies with the agent.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { plannedCgroup } from '../../agent/cgroup.ts'
import { requires } from '../helpers/requirements.ts'
import { alive, startTestAgent, waitFor } from './helpers.ts'

/** Pids of live `sleep <seconds>` processes: each test uses durations no one else does. */
function sleeps(seconds: number[]): number[] {
  const want = new Set(seconds.map(String))
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')
      if (argv[0].endsWith('sleep') && want.has(argv[1]) && alive(Number(name))) out.push(Number(name))
    } catch {}
  }
  return out
}

const unique = () => 500_000 + Math.floor(Math.random() * 400_000)

test('a broken log pipe does not kill the agent: it keeps serving, and reaps its sessions when stdin closes', async () => {
  const agent = await startTestAgent({ quiet: false })
  try {
    const s = unique()
    const client = await agent.connect()
    await client.service('spawn').start({ command: `sleep ${s}` })
    await waitFor(() => sleeps([s]).length === 1, 5000, 'the spawned sleep')
    // Our end of its stderr closes, as when the controller reading it dies: every log line now hits EPIPE.
    agent.child.stderr?.destroy()
    agent.child.stdout?.destroy()
    for (let i = 0; i < 20; i++) assert.equal((await client.service('exec').run({ command: 'true' })).exitCode, 0)
    assert.ok(alive(agent.pid), 'the agent survived writing to a broken pipe')
    const exited = once(agent.child, 'exit')
    agent.child.stdin?.end() // the controller is gone
    const [code, signal] = await exited
    assert.deepEqual([code, signal], [0, null], 'the agent stopped normally')
    assert.deepEqual(sleeps([s]), [], 'its session was reaped')
    assert.match(agent.log(), /agent stopped/)
    await client.close()
  } finally {
    await agent.dispose()
  }
})

test("an agent killed with -9: its keeper reaps the session's spawn trees and running exec at once", async t => {
  const agent = await startTestAgent()
  try {
    const [a, b, c] = [unique(), unique(), unique()]
    const client = await agent.connect()
    // A tree: sh with a background grandchild in the same group, plus a running exec.
    await client.service('spawn').start({ command: `sleep ${a} & sleep ${b}` })
    const running = client.service('exec').run({ command: `sleep ${c}` })
    running.catch(() => {})
    await waitFor(() => sleeps([a, b, c]).length === 3, 5000, 'three sleeps')
    const killed = Date.now()
    await agent.kill9()
    const ms = await waitFor(() => sleeps([a, b, c]).length === 0, 10_000, 'the sleeps to be reaped')
    t.diagnostic(
      `spawned and exec'd processes gone ${Date.now() - killed} ms after the agent's kill -9 (${ms} ms wait)`,
    )
    await waitFor(() => !existsSync(join(agent.stateDir, 'agent.lock')), 5000, 'the keeper to release the lock')
    assert.deepEqual(readdirSync(join(agent.stateDir, 'sessions')), [], 'session records reaped')
    assert.match(agent.log(), /agent died without stopping; its sessions were reaped by its keeper/)
    await client.close()
  } finally {
    await agent.dispose()
  }
})

test('a clean stop releases the keeper without reaping anything twice', async () => {
  const agent = await startTestAgent()
  const client = await agent.connect()
  await client.close()
  await agent.stop()
  await new Promise(r => setTimeout(r, 300))
  assert.doesNotMatch(agent.log(), /keeper/)
  await agent.dispose()
})

test('a process that left its group and tree (double fork + setsid) dies with the agent cgroup, on stop or kill -9', async t => {
  if (!requires(t, 'root')) return
  const planned = plannedCgroup()
  if (!planned) {
    if (process.env.CI) throw new Error('cgroup2 is not mounted: CI must provide it')
    return t.skip('cgroup2 is not mounted here')
  }
  for (const how of ['stop', 'kill -9'] as const) {
    const agent = await startTestAgent()
    try {
      const cgroup = join(dirname(planned), `vt-agent-${agent.pid}`)
      assert.ok(existsSync(cgroup), `the agent made its cgroup ${cgroup}`)
      const s = unique()
      const client = await agent.connect()
      await client.service('exec').run({ command: `(setsid sleep ${s} >/dev/null 2>&1 &)` })
      await waitFor(() => sleeps([s]).length === 1, 5000, 'the escaped sleep')
      await client.close()
      // Closing the session reaps its process groups and trees: the escapee is in neither.
      assert.equal(sleeps([s]).length, 1, 'the escapee outlived its session')
      const at = Date.now()
      if (how === 'stop') await agent.stop()
      else await agent.kill9()
      await waitFor(() => sleeps([s]).length === 0 && !existsSync(cgroup), 10_000, 'the cgroup emptied and removed')
      t.diagnostic(`${how}: escapee gone and cgroup removed ${Date.now() - at} ms after`)
    } finally {
      await agent.dispose()
    }
  }
})

test("an agent killed with -9: its keeper also heals the session's faults (the kinds services register)", async t => {
  if (!requires(t, 'root', 'nft')) return
  const agent = await startTestAgent()
  try {
    const client = await agent.connect()
    // TEST-NET-1 peers: nothing on this machine talks to them.
    await client.service('faults').partition({ peers: ['192.0.2.77'] })
    const tables = () => execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })
    const table = /inet (vtf_[0-9a-f]+)/.exec(tables())?.[1]
    assert.ok(table, 'the partition made its nftables table')
    await agent.kill9()
    assert.doesNotMatch(tables(), new RegExp(table), 'the keeper removed the table')
    assert.match(agent.log(), /keeper .*agent died without stopping/)
    await client.close()
  } finally {
    await agent.dispose()
  }
})
