// Authentication and handshake against a real agent process: wrong token, no token, a first frame that is
// not a hello, no frame at all, and a protocol version mismatch. Each refusal is logged with its reason.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import WebSocket from 'ws'
import { VtRemoteError } from '../../src/protocol/errors.ts'
import { PROTOCOL_VERSION } from '../../src/protocol/wire.ts'
import { assertNoLeak, startTestAgent, type TestAgent, waitFor } from './helpers.ts'

let agent: TestAgent

before(async () => {
  agent = await startTestAgent()
})

after(async () => {
  await agent.dispose()
  assertNoLeak(agent)
})

/** Sends raw frames as an unauthenticated peer; resolves with what came back and the close code. */
async function raw(frames: (string | Buffer)[], waitMs = 6000): Promise<{ messages: string[]; code: number }> {
  const ws = new WebSocket(agent.url)
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  const messages: string[] = []
  ws.on('message', d => messages.push(String(d)))
  for (const f of frames) ws.send(f)
  const code = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('agent did not close the connection')), waitMs)
    ws.once('close', c => {
      clearTimeout(t)
      resolve(c)
    })
  })
  return { messages, code }
}

test('the right token opens a session with facts', async () => {
  const c = await agent.connect()
  assert.equal(c.host, 'testhost')
  assert.ok(c.facts.cpu.cores >= 1)
  assert.ok(c.facts.memory.totalBytes > 0)
  assert.ok(c.facts.disk.freeBytes > 0)
  assert.equal(c.facts.agent.protocol, PROTOCOL_VERSION)
  assert.deepEqual(c.facts.roots, [agent.root])
  await c.close()
})

test('a wrong token is refused with AuthError, and the refusal is logged', async () => {
  await assert.rejects(agent.connect({ token: 'not-the-token-at-all' }), (e: unknown) => {
    assert.ok(e instanceof VtRemoteError)
    assert.equal(e.name, 'AuthError')
    assert.equal(e.code, 'AUTH')
    assert.match(e.message, /testhost: wrong token/)
    return true
  })
  await waitFor(() => /refused connection .*reason="wrong token"/.test(agent.log()), 2000, 'refusal in the log')
})

test('a hello without a token is refused', async () => {
  const { messages, code } = await raw([
    JSON.stringify({ t: 'hello', protocol: PROTOCOL_VERSION, client: { name: 'x', pid: 1 } }),
  ])
  assert.equal(code, 4001)
  assert.match(messages[0], /"refused".*AuthError/)
})

test('a first frame that is a call, not a hello, is refused and no service runs', async () => {
  const { messages, code } = await raw([
    JSON.stringify({ t: 'q', i: 'a', m: 'exec.run', a: [{ command: 'touch /tmp/pwned' }] }),
  ])
  assert.equal(code, 4001)
  assert.match(messages[0], /first frame must be the hello handshake/)
  assert.equal(messages.length, 1)
})

test('a binary first frame is refused', async () => {
  const { code } = await raw([Buffer.from([0, 0, 0, 1, 9, 9])])
  assert.equal(code, 4001)
})

test('a peer that sends nothing is closed after the hello timeout', async () => {
  const start = Date.now()
  const { code } = await raw([], 8000)
  assert.equal(code, 4001)
  assert.ok(Date.now() - start >= 4500)
  await waitFor(() => agent.log().includes('no handshake within 5 s'), 2000, 'timeout refusal in the log')
})

test('a protocol version mismatch names both versions', async () => {
  await assert.rejects(agent.connect({ protocolVersion: PROTOCOL_VERSION + 41 }), (e: unknown) => {
    assert.ok(e instanceof VtRemoteError)
    assert.equal(e.name, 'ProtocolVersionError')
    assert.match(e.message, new RegExp(`version ${PROTOCOL_VERSION + 41}.*version ${PROTOCOL_VERSION}`))
    return true
  })
})

test('the agent refuses to listen on a non-loopback address without TLS or --insecure', async () => {
  const { spawnSync } = await import('node:child_process')
  const { AGENT_MAIN } = await import('./helpers.ts')
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', AGENT_MAIN, '--listen', '0.0.0.0:0', '--token-env', 'T', '--state-dir', `${agent.dir}/other`],
    { env: { ...process.env, T: 'x'.repeat(32) }, encoding: 'utf8', timeout: 30_000 },
  )
  assert.equal(r.status, 2)
  assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0 without TLS/)
})

test('a short token is refused at start', async () => {
  const { spawnSync } = await import('node:child_process')
  const { AGENT_MAIN } = await import('./helpers.ts')
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      AGENT_MAIN,
      '--listen',
      '127.0.0.1:0',
      '--token-env',
      'T',
      '--state-dir',
      `${agent.dir}/other2`,
    ],
    { env: { ...process.env, T: 'short' }, encoding: 'utf8', timeout: 30_000 },
  )
  assert.equal(r.status, 2)
  assert.match(r.stderr, /at least 16 characters/)
})

/** Runs `vt agent` with these flags (token in $T) and returns its exit status and stderr. */
async function agentFails(flags: string[], token = 'x'.repeat(32)): Promise<{ status: number | null; stderr: string }> {
  const { spawnSync } = await import('node:child_process')
  const { AGENT_MAIN } = await import('./helpers.ts')
  const r = spawnSync(process.execPath, ['--import', 'tsx', AGENT_MAIN, '--token-env', 'T', ...flags], {
    env: { ...process.env, T: token },
    encoding: 'utf8',
    timeout: 30_000,
  })
  return { status: r.status, stderr: r.stderr }
}

test('a name that starts with "127." is not loopback: no cleartext listen on it', async () => {
  const r = await agentFails(['--listen', '127.example.invalid:0', '--state-dir', `${agent.dir}/other3`])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /refusing to listen on 127\.example\.invalid without TLS/)
})

test('a token longer than a hello can carry is refused at start', async () => {
  const r = await agentFails(['--listen', '127.0.0.1:0', '--state-dir', `${agent.dir}/other4`], 'y'.repeat(5000))
  assert.equal(r.status, 2)
  assert.match(r.stderr, /token has 5000 characters, more than the 4096/)
})

test('--listen on a busy port says so, without a stack trace', async () => {
  const port = new URL(agent.url).port
  const r = await agentFails(['--listen', `127.0.0.1:${port}`, '--state-dir', `${agent.dir}/other5`])
  assert.equal(r.status, 2, r.stderr)
  assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`))
  assert.doesNotMatch(r.stderr, /EADDRINUSE|\n\s+at /)
})

test('a controller with a token longer than a hello can carry says so before connecting', async () => {
  await assert.rejects(agent.connect({ token: 'z'.repeat(5000) }), /5000 characters, more than the 4096/)
})
