// An agent whose state dir is longer than a unix socket path may be (108 bytes) still gives host commands a
// working vt-sync socket: the socket moves to a short private dir, removed when the session ends.
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { MAX_SOCKET_PATH, socketRoot } from '../../agent/vm/sockets.ts'
import { assertNoLeak, startTestAgent } from './helpers.ts'

test('a long state dir: the vt-sync socket of host commands still works and goes with the session', async () => {
  const base = mkdtempSync(join(os.tmpdir(), 'vt-long-state-'))
  const agent = await startTestAgent({ dir: join(base, 'a-long-state-directory-name-'.repeat(5)) })
  try {
    assert.ok(agent.stateDir.length > MAX_SOCKET_PATH)
    const client = await agent.connect()
    const r = await client.service('exec').run({ command: 'printf %s "$VT_SYNC_SOCKET"' })
    const socket = Buffer.from(r.stdout).toString()
    assert.equal(r.exitCode, 0)
    assert.ok(socket.length <= MAX_SOCKET_PATH, socket)
    assert.ok(socket.startsWith(`${socketRoot()}/sync-`), socket)
    assert.ok(statSync(socket).isSocket())
    await client.close()
    const deadline = Date.now() + 5000
    while (existsSync(dirname(socket)) && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
    assert.equal(existsSync(dirname(socket)), false, 'the short socket dir goes with the session')
  } finally {
    await agent.dispose()
    rmSync(base, { recursive: true, force: true })
  }
  assertNoLeak(agent)
})
