// Malformed frames from an authenticated peer: fast-check sends thousands of random and mutated frames. The
// agent must stay up, answer every request that carries an id (with a result or an error as data), send a
// notice for frames it cannot answer, and keep serving another session undisturbed.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import fc from 'fast-check'
import WebSocket from 'ws'
import type { AgentClient } from '../../src/cluster/client.ts'
import { PROTOCOL_VERSION } from '../../src/protocol/wire.ts'
import { seeded } from '../helpers/property.ts'
import { alive, assertNoLeak, startTestAgent, type TestAgent } from './helpers.ts'

let agent: TestAgent
let other: AgentClient

before(async () => {
  agent = await startTestAgent()
  other = await agent.connect()
})

after(async () => {
  await other.close()
  await agent.dispose()
  assertNoLeak(agent)
})

interface Peer {
  ws: WebSocket
  responses: Map<string, Record<string, unknown>>
  notices: number
  waiters: Set<() => void>
}

async function openPeer(): Promise<Peer> {
  const ws = new WebSocket(agent.url)
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  const peer: Peer = { ws, responses: new Map(), notices: 0, waiters: new Set() }
  const welcome = new Promise<string>(resolve => ws.once('message', d => resolve(String(d))))
  ws.send(
    JSON.stringify({ t: 'hello', protocol: PROTOCOL_VERSION, token: agent.token, client: { name: 'fuzz', pid: 1 } }),
  )
  assert.match(await welcome, /"welcome"/)
  ws.on('message', (d, isBinary) => {
    if (isBinary) return
    const frame = JSON.parse(String(d))
    if (frame.t === 'error') peer.notices++
    else if (frame.t === 's') peer.responses.set(frame.i, frame)
    for (const w of peer.waiters) w()
  })
  return peer
}

async function until(peer: Peer, cond: () => boolean, what: string): Promise<void> {
  if (cond()) return
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      peer.waiters.delete(check)
      reject(new Error(`timed out waiting for ${what}`))
    }, 10_000)
    const check = () => {
      if (cond()) {
        clearTimeout(t)
        peer.waiters.delete(check)
        resolve()
      }
    }
    peer.waiters.add(check)
  })
}

// Methods without side effects outside the session (no exec: random arguments must never run commands).
const safeMethods = [
  'facts.ping',
  'facts.get',
  'files.stat',
  'files.list',
  'files.readSmall',
  'session.heartbeat',
  'session.capacity',
  'session.resources',
  'spawn.list',
  'spawn.wait',
  'exec.cancel',
]
const weirdNames = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'facts',
  'facts.',
  '.ping',
  'exec.run.x',
  '',
]

const methodArb = fc.oneof(
  fc.constantFrom(...safeMethods),
  fc.constantFrom(...weirdNames),
  fc.string({ maxLength: 20 }),
)
const validFrame = fc.record({
  t: fc.constant('q'),
  i: fc.constant('id'),
  m: fc.constantFrom(...safeMethods),
  a: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
})
const mutated = fc
  .tuple(
    validFrame,
    fc.constantFrom('t', 'i', 'm', 'a', 'o', 'extra'),
    fc.oneof(fc.jsonValue({ maxDepth: 2 }), methodArb),
    fc.boolean(),
  )
  .map(([frame, key, value, drop]) => {
    const f: Record<string, unknown> = { ...frame }
    if (drop) delete f[key]
    else f[key] = value
    return f
  })

type Frame = { kind: 'text'; text: string; id?: string } | { kind: 'binary'; data: Uint8Array }

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.string({ maxLength: 200 }).map(text => ({ kind: 'text' as const, text })),
  fc.jsonValue({ maxDepth: 3 }).map(v => ({ kind: 'text' as const, text: JSON.stringify(v) ?? 'null' })),
  validFrame.map(f => toText({ ...f })),
  mutated.map(toText),
  mutated.map(f => {
    const t = toText(f)
    return { kind: 'text' as const, text: t.text.slice(0, Math.max(1, t.text.length - 3)) } // truncated JSON
  }),
  fc.uint8Array({ maxLength: 64 }).map(data => ({ kind: 'binary' as const, data })),
)

let seq = 0
function toText(input: Record<string, unknown>): Extract<Frame, { kind: 'text' }> {
  const obj = { ...input }
  // A string id becomes unique so that every answer can be matched to its frame.
  if (typeof obj.i === 'string') obj.i = `f${++seq}`
  const expectsAnswer = obj.t === 'q' && typeof obj.i === 'string'
  return { kind: 'text', text: JSON.stringify(obj), id: expectsAnswer ? (obj.i as string) : undefined }
}

test('thousands of random and mutated frames: the agent stays up, answers, and other sessions are unaffected', async t => {
  const peer = await openPeer()
  let sent = 0
  let pingN = 0
  await fc.assert(
    fc.asyncProperty(fc.array(frameArb, { minLength: 10, maxLength: 40 }), async frames => {
      const ids: string[] = []
      for (const f of frames) {
        if (f.kind === 'binary') peer.ws.send(f.data)
        else {
          peer.ws.send(f.text)
          if (f.id) ids.push(f.id)
        }
        sent++
      }
      // Every request with an id gets an answer: a result or an error as data (name and message).
      await until(peer, () => ids.every(id => peer.responses.has(id)), `answers to ${ids.length} requests`)
      for (const id of ids) {
        const r = peer.responses.get(id) as { e?: { name?: unknown; message?: unknown } }
        if (r.e !== undefined) {
          assert.equal(typeof r.e.name, 'string', `error for ${id} has a name: ${JSON.stringify(r)}`)
          assert.equal(typeof r.e.message, 'string')
        }
        peer.responses.delete(id)
      }
      // The fuzzed connection still works, and so does another session.
      const probe = `probe${++pingN}`
      peer.ws.send(JSON.stringify({ t: 'q', i: probe, m: 'facts.ping', a: [pingN] }))
      await until(peer, () => peer.responses.has(probe), 'probe answer')
      assert.equal(peer.responses.get(probe)?.r, pingN)
      assert.equal(await other.service('facts').ping(pingN), pingN)
    }),
    seeded(t, { numRuns: 200 }),
  )
  assert.ok(sent >= 2000, `sent ${sent} frames`)
  assert.ok(peer.notices > 0, 'malformed frames without an id got notices')
  assert.ok(alive(agent.pid))
  peer.ws.close()
})

test('unknown and prototype function names answer a BadRequestError', async () => {
  const peer = await openPeer()
  for (const [n, m] of ['__proto__', 'constructor', 'nope.nope', 'toString'].entries()) {
    peer.ws.send(JSON.stringify({ t: 'q', i: `u${n}`, m, a: [] }))
  }
  await until(peer, () => peer.responses.size === 4, 'answers')
  for (const r of peer.responses.values()) {
    const e = r.e as { name: string; code: string }
    assert.equal(e.name, 'BadRequestError')
    assert.equal(e.code, 'UNKNOWN_FUNCTION')
  }
  peer.ws.close()
})

test('invalid arguments are refused before the service runs, naming the argument', async () => {
  await assert.rejects(
    other.service('exec').run({ command: 'true', timeoutMs: 'soon' as never }),
    /argument 1\.timeoutMs/,
  )
  await assert.rejects(other.service('exec').run({ command: 'x', argv: ['y'] }), /exactly one of "argv" and "command"/)
  await assert.rejects(other.service('files').stat('relative/path'), /absolute path/)
})

test('many unauthenticated random first frames: all refused, agent up', async t => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.string({ maxLength: 100 }),
        fc.jsonValue().map(v => JSON.stringify(v) ?? ''),
      ),
      async text => {
        const ws = new WebSocket(agent.url)
        await new Promise((resolve, reject) => {
          ws.once('open', resolve)
          ws.once('error', reject)
        })
        const code = new Promise<number>(resolve => ws.once('close', c => resolve(c)))
        ws.send(text)
        assert.equal(await code, 4001)
      },
    ),
    seeded(t, { numRuns: 100 }),
  )
  assert.equal(await other.service('facts').ping('still here'), 'still here')
})
