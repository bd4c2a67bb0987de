// The agent's token never reaches what the agent runs: exec, spawn (and QEMU, started the same way) inherit an
// environment without it, although the agent read it from an environment variable (--token-env).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { AgentClient } from '../../src/cluster/client.ts'
import { Host } from '../../src/cluster/host.ts'
import { assertNoLeak, startTestAgent, type TestAgent } from './helpers.ts'

let agent: TestAgent
let client: AgentClient
let host: Host

before(async () => {
  agent = await startTestAgent()
  client = await agent.connect()
  host = new Host(client, agent.url)
})

after(async () => {
  await client.close()
  await agent.dispose()
  assertNoLeak(agent)
})

test("host.exec('env') does not show the agent's token", async () => {
  const r = await host.exec('env')
  assert.equal(r.exitCode, 0)
  assert.match(r.stdout, /^PATH=/m, 'the environment is otherwise inherited')
  assert.equal(r.stdout.includes(agent.token), false, 'the token is in the environment of exec')
  assert.doesNotMatch(r.stdout, /^VT_TEST_TOKEN=/m)
})

test('a spawned process does not get the token either', async () => {
  const p = await host.spawn(['sh', '-c', 'env; cat /proc/self/environ'])
  await p.wait(10_000)
  const out = await p.logs()
  assert.match(out, /PATH=/)
  assert.equal(out.includes(agent.token), false, 'the token is in the environment of spawn')
})
