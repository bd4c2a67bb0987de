// A session's volumes are reaped with it: when its controller is killed with -9 (the lease expires), and when
// the agent itself is killed with -9 (its keeper reaps the records). Volumes made by nobody's session stay.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { assertNoLeak, startTestAgent, type TestAgent, waitFor } from '../agent/helpers.ts'
import { requires } from '../helpers/requirements.ts'

const CONTROLLER = resolve(fileURLToPath(import.meta.url), '../scripts/volume-controller.ts')

function startController(agent: TestAgent): Promise<{ child: ChildProcess; files: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CONTROLLER], {
    env: { ...process.env, VT_URL: agent.url, VT_TOKEN: agent.token, VT_LEASE: '2' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((res, rej) => {
    let out = ''
    child.once('exit', c => rej(new Error(`the controller exited with ${c}`)))
    child.stdout?.on('data', d => {
      out += d
      if (out.includes('\n')) {
        child.removeAllListeners('exit')
        res({ child, files: JSON.parse(out.split('\n')[0]).files })
      }
    })
  })
}

test("a controller killed with -9: its session's volumes are reaped when the lease expires", async t => {
  if (!requires(t, 'qemu')) return
  const agent = await startTestAgent()
  try {
    const { child, files } = await startController(agent)
    assert.ok(
      files.every(f => existsSync(f)),
      'the volumes exist while the controller lives',
    )
    child.kill('SIGKILL')
    await waitFor(() => files.every(f => !existsSync(f)), 30_000, 'the volumes to be reaped')
    assert.deepEqual(readdirSync(dirname(files[0])), [])
  } finally {
    await agent.dispose()
  }
  assertNoLeak(agent)
})

test("an agent killed with -9: its keeper reaps the session's volumes", async t => {
  if (!requires(t, 'qemu')) return
  const agent = await startTestAgent()
  let controller: ChildProcess | undefined
  try {
    const started = await startController(agent)
    controller = started.child
    const kept = join(dirname(started.files[0]), 'not-ours')
    await import('node:fs').then(fs => fs.writeFileSync(kept, 'made by no session'))
    await agent.kill9()
    assert.ok(
      started.files.every(f => !existsSync(f)),
      'the keeper removed the volumes',
    )
    assert.ok(existsSync(kept), 'a file no session made stays')
    assert.match(agent.log(), /agent died without stopping; its sessions were reaped by its keeper/)
  } finally {
    controller?.kill('SIGKILL')
    await agent.dispose()
  }
  assertNoLeak(agent)
})
