// waitForAgentReady against small child processes standing in for an agent's start-up (the real agent's ready
// line is read the same way by every test that starts one, and by the embedded cluster).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test } from 'node:test'
import { waitForAgentReady } from '../../src/cluster/localAgent.ts'
import { readyLine } from '../../src/protocol/ready.ts'

function child(script: string) {
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] })
}

test('reads the ready line after other output, split across chunks', async () => {
  const line = readyLine({ url: 'ws://127.0.0.1:1', pid: 1, name: 'a' })
  const p = child(
    `process.stdout.write('starting\\n' + ${JSON.stringify(line.slice(0, 10))}); setTimeout(() => { process.stdout.write(${JSON.stringify(line.slice(10))}); setTimeout(() => {}, 200) }, 50)`,
  )
  assert.deepEqual(await waitForAgentReady(p), { url: 'ws://127.0.0.1:1', pid: 1, name: 'a' })
  p.kill()
})

test('an agent that exits, stays silent or prints a malformed ready line is a clear error', async () => {
  await assert.rejects(
    waitForAgentReady(child('process.exit(2)'), { explain: why => `agent h1 ${why}` }),
    /^Error: agent h1 exited with code 2 before it was ready$/,
  )
  const silent = child('setTimeout(() => {}, 5000)')
  await assert.rejects(waitForAgentReady(silent, { timeoutMs: 200 }), /did not report ready within 0.2 s/)
  silent.kill()
  const bad = child(`console.log('{"vtAgentReady": {}}'); setTimeout(() => {}, 5000)`)
  await assert.rejects(waitForAgentReady(bad), /malformed ready line/)
  bad.kill()
})
