// files against a real agent: round trips (small and streamed), stat/list/remove, confinement to the allowed
// roots (absolute paths outside, `..`, symlinks pointing out, the root itself), and reaping of what a session
// created.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { AgentClient } from '../../src/cluster/client.ts'
import { Host } from '../../src/cluster/host.ts'
import { VtRemoteError } from '../../src/protocol/errors.ts'
import { assertNoLeak, startTestAgent, type TestAgent } from './helpers.ts'

let agent: TestAgent
let client: AgentClient
let host: Host
let outside: string

before(async () => {
  agent = await startTestAgent()
  client = await agent.connect()
  host = new Host(client, agent.url)
  outside = join(agent.dir, 'outside')
  mkdirSync(outside)
  writeFileSync(join(outside, 'secret'), 'top secret')
})

after(async () => {
  await client.close()
  await agent.dispose()
  assertNoLeak(agent)
})

const refused = (e: unknown) => {
  assert.ok(e instanceof VtRemoteError, String(e))
  assert.equal(e.code, 'OUTSIDE_ROOTS')
  assert.equal(e.host, 'testhost')
  assert.match(e.message, /outside the agent's allowed roots/)
  return true
}

test('small put and get round trip, stat and list', async () => {
  const p = join(agent.root, 'a.txt')
  const st = await host.files.put(p, 'hello', { mode: 0o600 })
  assert.equal(st.size, 5)
  assert.equal(st.mode, 0o600)
  assert.equal(await host.files.read(p), 'hello')
  assert.equal((await host.files.stat(p))?.type, 'file')
  assert.equal(await host.files.stat(join(agent.root, 'missing')), null)
  assert.ok((await host.files.list(agent.root)).some(f => f.path === p))
})

test('a 20 MiB file streams in chunks both ways, byte for byte', async () => {
  const data = randomBytes(20 * 1024 * 1024 + 123)
  const p = join(agent.root, 'big.bin')
  const st = await host.files.put(p, data)
  assert.equal(st.size, data.length)
  assert.ok(readFileSync(p).equals(data))
  const back = await host.files.get(p)
  assert.ok(back.equals(data))
  const local = join(agent.dir, 'downloaded.bin')
  assert.equal(await host.files.download(p, local), data.length)
  assert.ok(readFileSync(local).equals(data))
  const up = join(agent.root, 'sub', 'uploaded.bin')
  await host.files.upload(local, up, { mkdirs: true })
  assert.ok(readFileSync(up).equals(data))
})

test('mkdir and remove', async () => {
  const d = join(agent.root, 'x', 'y')
  await host.files.mkdir(d)
  assert.equal((await host.files.stat(d))?.type, 'directory')
  await assert.rejects(host.files.remove(join(agent.root, 'x')), /ENOTEMPTY|EISDIR|directory/i)
  assert.equal(await host.files.remove(join(agent.root, 'x'), { recursive: true }), true)
  assert.equal(await host.files.remove(join(agent.root, 'x')), false)
})

test('paths outside the roots are refused', async () => {
  await assert.rejects(host.files.read('/etc/passwd'), refused)
  await assert.rejects(host.files.read(join(outside, 'secret')), refused)
  await assert.rejects(host.files.put('/tmp/vt-should-not-exist', 'x'), refused)
  await assert.rejects(host.files.list('/'), refused)
  await assert.rejects(host.files.remove(join(outside, 'secret')), refused)
  assert.equal(existsSync('/tmp/vt-should-not-exist'), false)
})

test('.. that climbs out is refused', async () => {
  await assert.rejects(host.files.read(`${agent.root}/../outside/secret`), refused)
  await assert.rejects(host.files.put(`${agent.root}/a/../../outside/new`, 'x', { mkdirs: true }), refused)
  assert.equal(existsSync(join(outside, 'new')), false)
})

test('symlinks that point out of the roots are refused, for reads and writes', async () => {
  symlinkSync(join(outside, 'secret'), join(agent.root, 'link-to-secret'))
  symlinkSync(outside, join(agent.root, 'link-to-dir'))
  await assert.rejects(host.files.read(join(agent.root, 'link-to-secret')), refused)
  await assert.rejects(host.files.read(join(agent.root, 'link-to-dir', 'secret')), refused)
  await assert.rejects(host.files.put(join(agent.root, 'link-to-dir', 'planted'), 'x'), refused)
  await assert.rejects(host.files.put(join(agent.root, 'link-to-secret'), 'overwritten'), refused)
  await assert.rejects(host.files.list(join(agent.root, 'link-to-dir')), refused)
  assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'top secret')
  assert.equal(existsSync(join(outside, 'planted')), false)
  // Removing the link itself is fine: it lives inside the root; its target is untouched.
  assert.equal(await host.files.remove(join(agent.root, 'link-to-secret')), true)
  assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'top secret')
})

test('a symlink inside the roots is followed', async () => {
  writeFileSync(join(agent.root, 'target.txt'), 'inside')
  symlinkSync(join(agent.root, 'target.txt'), join(agent.root, 'inner-link'))
  assert.equal(await host.files.read(join(agent.root, 'inner-link')), 'inside')
})

test('the root itself cannot be removed', async () => {
  await assert.rejects(host.files.remove(agent.root, { recursive: true }), /refusing to remove the allowed root/)
  assert.ok(existsSync(agent.root))
})

test('files a session created are removed with it, unless kept; existing files are never removed', async () => {
  const c2 = await agent.connect()
  const h2 = new Host(c2, agent.url)
  const existing = join(agent.root, 'pre-existing.txt')
  writeFileSync(existing, 'old')
  await h2.files.put(existing, 'overwritten')
  await h2.files.put(join(agent.root, 'temp.txt'), 'temp')
  await h2.files.put(join(agent.root, 'kept.txt'), 'kept', { keep: true })
  await h2.files.put(join(agent.root, 'deep', 'er', 'f.txt'), 'f', { mkdirs: true })
  await c2.close()
  assert.equal(existsSync(join(agent.root, 'temp.txt')), false)
  assert.equal(existsSync(join(agent.root, 'deep')), false)
  assert.equal(readFileSync(join(agent.root, 'kept.txt'), 'utf8'), 'kept')
  assert.equal(readFileSync(existing, 'utf8'), 'overwritten')
})
