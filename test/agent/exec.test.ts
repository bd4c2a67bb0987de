// exec and spawn against a real agent: output, exit codes, signals, stdin, env, cwd, streaming, a command
// that never ends (timeout kills the whole tree), cancel, and long-running processes reaped with the session.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, test } from 'node:test'
import type { AgentClient } from '../../src/cluster/client.ts'
import { Host } from '../../src/cluster/host.ts'
import { alive, assertNoLeak, startTestAgent, type TestAgent, waitFor } from './helpers.ts'

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

test('exit code, stdout and stderr of a shell string', async () => {
  const r = await host.exec('echo out; echo err >&2; exit 7')
  assert.equal(r.exitCode, 7)
  assert.equal(r.stdout, 'out\n')
  assert.equal(r.stderr, 'err\n')
  assert.equal(r.signal, null)
})

test('argv runs without a shell: metacharacters stay literal', async () => {
  const r = await host.exec(['echo', '$HOME; rm -rf /'])
  assert.equal(r.stdout, '$HOME; rm -rf /\n')
})

test('env, cwd and stdin', async () => {
  assert.equal(await host.succeed('echo $VT_X', { env: { VT_X: 'forty-two' } }), 'forty-two\n')
  assert.equal(await host.succeed('pwd', { cwd: '/tmp' }), '/tmp\n')
  assert.equal(await host.succeed(['tr', 'a-z', 'A-Z'], { stdin: 'shout' }), 'SHOUT')
  assert.equal(
    await host.succeed('env | grep -c . || true', { clearEnv: true, env: { ONLY: '1' } }).then(s => s.trim()),
    '2',
  )
})

test('binary output survives the wire', async () => {
  const r = await client.service('exec').run({ command: 'printf "\\000\\377\\001"' })
  assert.deepEqual([...r.stdout], [0, 255, 1])
})

test('a signal is reported', async () => {
  const r = await host.exec('kill -TERM $$')
  assert.equal(r.exitCode, null)
  assert.equal(r.signal, 'SIGTERM')
})

test('succeed() fails with the host, the command and stderr', async () => {
  await assert.rejects(
    host.succeed('echo broken >&2; exit 3'),
    /testhost: `echo broken >&2; exit 3` exited with code 3:\nbroken/,
  )
})

test('a missing program is an error naming it', async () => {
  await assert.rejects(host.exec(['/nonexistent/prog']), /testhost: exec\.run: cannot run \/nonexistent\/prog/)
})

test('output streams as events while the command runs', async () => {
  const seen: string[] = []
  const r = await host.exec('for i in 1 2 3; do echo line$i; sleep 0.05; done', { onStdout: s => seen.push(s) })
  assert.equal(seen.join(''), 'line1\nline2\nline3\n')
  assert.equal(r.stdout, 'line1\nline2\nline3\n')
})

test('an exec that never ends: the timeout kills the whole process tree', async () => {
  // A shell with a background child and a grandchild in a new session: all must die.
  const r = await host.exec(
    `sleep 1000 & echo $! > ${agent.root}/bg.pid; setsid sh -c 'echo $$ > ${agent.root}/gc.pid; exec sleep 1000' & sleep 1000`,
    { timeout: 700 },
  )
  assert.equal(r.timedOut, true)
  assert.equal(r.signal, 'SIGKILL')
  for (const f of ['bg.pid', 'gc.pid']) {
    const pid = Number(readFileSync(`${agent.root}/${f}`, 'utf8'))
    await waitFor(() => !alive(pid), 3000, `${f} ${pid} to die`)
  }
})

test('cancel kills a running exec', async () => {
  const ac = new AbortController()
  const running = host.exec('sleep 1000', { signal: ac.signal })
  await new Promise(r => setTimeout(r, 200))
  ac.abort()
  const r = await running
  assert.equal(r.canceled, true)
  assert.equal(r.signal, 'SIGKILL')
})

test('exec leaves nothing behind in its process group', async () => {
  const r = await host.exec(`(trap '' HUP; sleep 1000) > /dev/null 2>&1 & echo $!`)
  const pid = Number(r.stdout.trim())
  await waitFor(() => !alive(pid), 3000, 'the background sleep to be killed')
})

test('spawn: logs, wait, kill; the session reaps what is still running', async () => {
  const p = await host.spawn('echo started; echo oops >&2; exec sleep 1000', { name: 'sleeper' })
  assert.ok(alive(p.pid))
  await waitFor(async () => (await p.logs()).includes('started'), 3000, 'log output')
  assert.equal(await p.logs('stderr'), 'oops\n')
  assert.equal(await p.wait(100), null)
  const done = await host.spawn(['sh', '-c', 'exit 4'])
  const info = await done.wait(5000)
  assert.equal(info?.exitCode, 4)
  assert.equal(await p.kill('SIGTERM'), true)
  const killed = await p.wait(5000)
  assert.equal(killed?.signal, 'SIGTERM')

  // Still running at session end: reaped by session close.
  const c2 = await agent.connect()
  const h2 = new Host(c2, agent.url)
  const q = await h2.spawn('sleep 1000')
  const resources = await c2.service('session').resources()
  assert.ok(resources.some(r => r.kind === 'process' && r.pid === q.pid))
  await c2.close()
  await waitFor(() => !alive(q.pid), 3000, 'spawned process reaped')
})

test('a chatty streamed command does not flood the agent: output arrives whole, in order', async () => {
  let received = 0
  const r = await host.exec('head -c 20000000 /dev/zero', { onStdout: s => (received += s.length), maxBuffer: 1024 })
  assert.equal(r.exitCode, 0)
  assert.equal(received, 20_000_000)
  assert.equal(r.truncated, true)
  assert.equal(r.stdout.length, 1024)
})
