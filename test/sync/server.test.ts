// The run's sync server on its own: releases, timeouts that name who arrived and who is missing, parties that
// go away, keys waited for before they are shared.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Arrival, Participant, SyncOp } from '../../src/protocol/sync.ts'
import { SyncServer } from '../../src/sync/server.ts'

const who = (label: string, kind: Participant['kind'] = 'spec'): Participant => ({ kind, label })
let n = 0
const ask = (s: SyncServer, label: string, op: SyncOp, owner = 'o', onArrival?: (a: Arrival) => void) =>
  s.request(owner, `r${++n}`, who(label), op, onArrival)

test('16 parties from different owners release together, each hearing every arrival once', async () => {
  const s = new SyncServer()
  const heard: string[][] = Array.from({ length: 16 }, () => [])
  const replies = Array.from({ length: 16 }, (_, i) =>
    ask(s, `p${i}`, { op: 'barrier', name: 'b', parties: 16 }, `w${i % 3}`, a => heard[i].push(a.who)),
  )
  const all = await Promise.all(replies)
  for (const r of all) {
    assert.equal(r.ok, true)
    assert.deepEqual(
      r.ok && r.arrivals?.map(a => a.who),
      Array.from({ length: 16 }, (_, i) => `p${i}`),
    )
  }
  for (const h of heard) assert.deepEqual([...h].sort(), Array.from({ length: 16 }, (_, i) => `p${i}`).sort())
  // The same name starts over.
  const again = [
    ask(s, 'x', { op: 'barrier', name: 'b', parties: 2 }),
    ask(s, 'y', { op: 'barrier', name: 'b', parties: 2 }),
  ]
  assert.deepEqual(
    (await Promise.all(again)).map(r => r.ok),
    [true, true],
  )
  assert.deepEqual(s.describePending(), [])
})

test('a timeout breaks the barrier for everyone and names who arrived and what is missing', async () => {
  const s = new SyncServer()
  const early = ask(s, 'VM c1 on host h2', { op: 'barrier', name: 'up', parties: 3 })
  const other = ask(s, 'host h1: `./srv` (pid 5)', { op: 'wait', key: 'never' })
  const late = await ask(s, 'test "t" (worker 0)', { op: 'barrier', name: 'up', parties: 3, timeoutMs: 50 })
  assert.equal(late.ok, false)
  assert.equal(!late.ok && late.code, 'timeout')
  const m = !late.ok ? late.message : ''
  assert.match(
    m,
    /barrier "up" failed: test "t" \(worker 0\) timed out after 0\.1 s; 2 of 3 arrived: VM c1 on host h2 \(\+0\.0 s\), test "t"/,
  )
  assert.match(m, /missing 1 \(waiting elsewhere: host h1: `\.\/srv` \(pid 5\) at key "never"\)/)
  const e = await early
  assert.equal(!e.ok && e.code, 'broken')
  assert.match(!e.ok ? e.message : '', /^barrier "up" broken: test "t" \(worker 0\) timed out/)
  s.close('run over')
  const o = await other
  assert.equal(!o.ok && o.message, 'run over')
})

test('a party that goes away releases the barrier with an error naming it', async () => {
  const s = new SyncServer()
  const a = ask(s, 'test "a" (worker 0)', { op: 'barrier', name: 'b', parties: 3 }, 'worker 0')
  const b = ask(s, 'VM v on host h1', { op: 'barrier', name: 'b', parties: 3 }, 'worker 1')
  const key = ask(s, 'VM v on host h1', { op: 'wait', key: 'k' }, 'worker 1')
  s.dropOwner('worker 1', 'worker process 1 exited (signal SIGKILL)')
  const ra = await a
  assert.equal(!ra.ok && ra.code, 'broken')
  assert.match(
    !ra.ok ? ra.message : '',
    /barrier "b" broken: VM v on host h1 left before it was released \(worker process 1 exited \(signal SIGKILL\)\); 2 of 3 arrived/,
  )
  assert.equal((await b).ok, false)
  assert.equal((await key).ok, false)
  // The next use of the name is a fresh barrier.
  const fresh = [ask(s, 'x', { op: 'barrier', name: 'b', parties: 1 })]
  assert.equal((await fresh[0]).ok, true)
})

test('parties must agree on the count', async () => {
  const s = new SyncServer()
  const first = ask(s, 'one', { op: 'barrier', name: 'b', parties: 2 })
  const wrong = await ask(s, 'two', { op: 'barrier', name: 'b', parties: 3 })
  assert.equal(!wrong.ok && wrong.code, 'error')
  assert.match(!wrong.ok ? wrong.message : '', /two says 3 parties, but one arrived first saying 2/)
  s.close('done')
  assert.equal((await first).ok, false)
})

test('keys: waited for before they are shared, latest value wins, wait-all collects', async () => {
  const s = new SyncServer()
  const w = ask(s, 'client', { op: 'wait', key: 'ip' })
  const all = ask(s, 'collector', { op: 'waitAll', key: 'res', count: 3 })
  assert.deepEqual(await ask(s, 'server', { op: 'send', key: 'ip', value: '10.0.0.1' }), { ok: true })
  const r = await w
  assert.equal(r.ok && r.value, '10.0.0.1')
  assert.equal(r.ok && r.arrivals?.[0].who, 'server')
  for (const v of ['a', 'b\nline', 'c']) await ask(s, `c-${v}`, { op: 'send', key: 'res', value: v })
  const ra = await all
  assert.deepEqual(ra.ok && ra.values, ['a', 'b\nline', 'c'])
  await ask(s, 'server', { op: 'send', key: 'ip', value: '10.0.0.2' })
  const r2 = await ask(s, 'late', { op: 'wait', key: 'ip' })
  assert.equal(r2.ok && r2.value, '10.0.0.2')
  const t = await ask(s, 'impatient', { op: 'wait', key: 'nope', timeoutMs: 20 })
  assert.equal(!t.ok && t.code, 'timeout')
  assert.match(
    !t.ok ? t.message : '',
    /impatient timed out after 0\.0 s waiting for key "nope": 0 of 1 shared; keys shared so far: ip, res/,
  )
})
