// An agent that dies is noticed at once by a controller with reconnection on: the call in flight fails, the
// client closes for good (nothing listens at the agent's address: a restarted agent would have reaped the session
// anyway), and every later call fails at once naming the host, instead of each waiting out the lease.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startTestAgent } from '../agent/helpers.ts'

test('agent killed: pending and later calls fail at once with AGENT_GONE naming the host; close returns', async t => {
  const agent = await startTestAgent()
  try {
    const client = await agent.connect({ name: 'h1', leaseSeconds: 30 })
    const states: string[] = []
    client.onLinkState(e => states.push(e.state === 'closed' ? `closed ${e.closedError?.code}` : e.state))
    const pending = client.service('exec').run({ command: 'sleep 30' })
    pending.catch(() => {})
    await new Promise(r => setTimeout(r, 200))
    const killed = Date.now()
    await agent.kill9()
    await assert.rejects(pending, /testhost: exec\.run: connection to agent lost/)
    const later = await client
      .service('exec')
      .run({ command: 'true' })
      .then(
        () => assert.fail('a call to a dead agent succeeded'),
        e => e,
      )
    const ms = Date.now() - killed
    t.diagnostic(`in-flight and next call failed ${ms} ms after kill -9 (lease 30 s)`)
    assert.equal(later.code, 'AGENT_GONE')
    assert.match(later.message, /^testhost: exec\.run: the agent is gone: .*connection refused/)
    assert.equal(client.state, 'closed')
    // The link's state reaches listeners (e.g. a migration) as events, with the reason once closed.
    assert.deepEqual(states, ['reconnecting', 'closed AGENT_GONE'])
    await client.close() // nothing to wait for
    assert.equal(states.length, 2, 'closing a closed client is no new state')
  } finally {
    await agent.dispose()
  }
})
