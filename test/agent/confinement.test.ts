// Path confinement under a race and reads of files that are not regular, against a real agent: a directory on
// the way flips between itself and a symlink out of the root while hundreds of writes and reads go through it;
// FIFOs and devices are refused unless asked for, and then read only up to maxBytes.
import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { AgentClient } from '../../src/cluster/client.ts'
import { VtRemoteError } from '../../src/protocol/errors.ts'
import { requires } from '../helpers/requirements.ts'
import { assertNoLeak, startTestAgent, type TestAgent, waitFor } from './helpers.ts'

let agent: TestAgent
let client: AgentClient

before(async () => {
  agent = await startTestAgent()
  client = await agent.connect()
})

after(async () => {
  await client.close()
  await agent.dispose()
  assertNoLeak(agent)
})

/** A separate process that swaps `dir` for a symlink to `outside` and back, as fast as it can. */
function startFlipper(dir: string, outside: string): ChildProcess {
  const script = `
    const fs = require('node:fs')
    const [dir, outside] = process.argv.slice(1)
    const parked = dir + '.parked'
    for (;;) {
      fs.renameSync(dir, parked)
      fs.symlinkSync(outside, dir)
      fs.unlinkSync(dir)
      fs.renameSync(parked, dir)
    }`
  return spawn(process.execPath, ['-e', script, dir, outside], { stdio: 'ignore' })
}

test('400 writes and reads through a directory that flips to a symlink out of the root: nothing lands outside', async () => {
  const outside = join(agent.dir, 'outside-race')
  mkdirSync(outside)
  writeFileSync(join(outside, 'secret'), 'top secret')
  const race = join(agent.root, 'race')
  mkdirSync(race)
  writeFileSync(join(race, 'secret'), 'inside')
  const flipper = startFlipper(race, outside)
  const files = client.service('files')
  const outcomes = { written: 0, refused: 0, read: 0, leaked: 0 }
  try {
    for (let batch = 0; batch < 50; batch++) {
      await Promise.all(
        Array.from({ length: 8 }, async (_, j) => {
          const i = batch * 8 + j
          try {
            await files.write(join(race, `f${i}`), `${i}`)
            outcomes.written++
          } catch (e) {
            assert.ok(e instanceof VtRemoteError, String(e))
            outcomes.refused++
          }
          try {
            const data = Buffer.from(await files.readSmall(join(race, 'secret'))).toString()
            if (data === 'top secret') outcomes.leaked++
            else outcomes.read++
          } catch (e) {
            assert.ok(e instanceof VtRemoteError, String(e))
          }
        }),
      )
    }
  } finally {
    flipper.kill('SIGKILL')
    await once(flipper, 'exit')
  }
  const landed = readdirSync(outside).filter(n => n !== 'secret')
  assert.deepEqual(landed, [], `${landed.length} files landed outside the root`)
  assert.equal(outcomes.leaked, 0, 'a read returned the file outside the root')
  assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'top secret')
  // Not vacuous: the race was on (some calls refused) and the writes that went through are inside.
  assert.ok(outcomes.written > 0 && outcomes.refused > 0, JSON.stringify(outcomes))
  console.log(`race outcomes: ${JSON.stringify(outcomes)}`)
})

test('recursive removes while a subdirectory flips to a symlink out of the root: nothing outside is deleted', async () => {
  const outside = join(agent.dir, 'outside-rm')
  mkdirSync(outside)
  for (let i = 0; i < 20; i++) writeFileSync(join(outside, `keep${i}`), 'keep')
  const top = join(agent.root, 'rmrace')
  const sub = join(top, 'sub')
  // Flips sub while it exists; the test recreates the tree before each remove.
  const flipper = spawn(
    process.execPath,
    [
      '-e',
      `const fs = require('node:fs'); const [sub, out] = process.argv.slice(1)
       for (;;) { try { fs.renameSync(sub, sub + '.p'); fs.symlinkSync(out, sub); fs.unlinkSync(sub); fs.renameSync(sub + '.p', sub) } catch {} }`,
      sub,
      outside,
    ],
    { stdio: 'ignore' },
  )
  const files = client.service('files')
  let removed = 0
  try {
    for (let round = 0; round < 150; round++) {
      try {
        mkdirSync(join(sub, 'deeper'), { recursive: true })
        writeFileSync(join(sub, 'deeper', 'f'), 'x')
      } catch {} // the flipper holds sub as a link right now
      try {
        if (await files.remove(top, { recursive: true })) removed++
      } catch (e) {
        assert.ok(e instanceof VtRemoteError, String(e)) // e.g. a directory refilled mid-remove
      }
    }
  } finally {
    flipper.kill('SIGKILL')
    await once(flipper, 'exit')
  }
  // (The test's own mkdir may go through the link and add entries outside; the agent must delete none.)
  const kept = readdirSync(outside).filter(n => n.startsWith('keep'))
  assert.equal(kept.length, 20, `outside still holds ${kept.join(', ')}`)
  assert.ok(removed > 0)
})

test('reaping never follows a directory that became a symlink out of the root', async () => {
  const outside = join(agent.dir, 'outside-reap')
  mkdirSync(outside)
  writeFileSync(join(outside, 'f'), 'keep me')
  const dir = join(agent.root, 'reapdir')
  mkdirSync(dir)
  const c2 = await agent.connect()
  await c2.service('files').write(join(dir, 'f'), 'session file') // recorded: reaped with the session
  // The directory is swapped for a link to a directory holding a file of the same name.
  renameSync(dir, `${dir}.moved`)
  symlinkSync(outside, dir)
  await c2.close()
  await waitFor(() => /not reaped: a symlink on its path now leads elsewhere/.test(agent.log()), 5000, 'log')
  assert.equal(readFileSync(join(outside, 'f'), 'utf8'), 'keep me')
  assert.equal(readFileSync(join(`${dir}.moved`, 'f'), 'utf8'), 'session file')
})

test('a FIFO is refused by readSmall unless asked for, and then answers at once', async () => {
  const fifo = join(agent.root, 'fifo')
  execFileSync('mkfifo', [fifo])
  const files = client.service('files')
  await assert.rejects(files.readSmall(fifo), (e: unknown) => {
    assert.ok(e instanceof VtRemoteError)
    assert.equal(e.code, 'NOT_REGULAR')
    assert.match(e.message, /not a regular file .*special: true/)
    return true
  })
  // No writer: empty, and the call returns (opening no longer waits for a writer).
  assert.equal((await files.readSmall(fifo, { special: true })).length, 0)
  assert.equal(await files.stat(fifo).then(s => s?.type), 'other')
})

test('a character device is refused unless asked for, and then read only up to maxBytes', async t => {
  if (!requires(t, 'root')) return
  const zero = join(agent.root, 'zero')
  execFileSync('mknod', [zero, 'c', '1', '5']) // /dev/zero: stat size 0, endless data
  const files = client.service('files')
  await assert.rejects(files.readSmall(zero), /not a regular file/)
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'))?.[1]) * 1024
  const before = rss()
  await assert.rejects(files.readSmall(zero, { special: true, maxBytes: 1024 * 1024 }), (e: unknown) => {
    assert.ok(e instanceof VtRemoteError)
    assert.equal(e.code, 'TOO_LARGE')
    return true
  })
  // The default maxBytes (16 MiB) bounds it too.
  await assert.rejects(files.readSmall(zero, { special: true }), /more than maxBytes/)
  const grown = rss() - before
  assert.ok(grown < 128 * 1024 * 1024, `agent grew by ${Math.round(grown / 1048576)} MiB`)
  // Streamed reads refuse it as before.
  await assert.rejects(client.service('files').read(zero, { stream: 7 }), /not a regular file/)
})
