// Hostile peers before authentication, against a real agent process: raw TCP connections that never speak,
// floods from one and from many addresses, half-sent huge first frames, oversized hellos, and calls pipelined
// behind a hello. The agent must stay small, close what it cannot afford, and keep serving real controllers.
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import WebSocket from 'ws'
import type { AgentClient } from '../../src/cluster/client.ts'
import { MAX_HELLO_BYTES, PROTOCOL_VERSION } from '../../src/protocol/wire.ts'
import { alive, assertNoLeak, startTestAgent, type TestAgent, waitFor } from './helpers.ts'

let agent: TestAgent
let live: AgentClient
let port: number

before(async () => {
  agent = await startTestAgent()
  port = Number(new URL(agent.url).port)
  live = await agent.connect()
})

after(async () => {
  await live.close()
  await agent.dispose()
  assertNoLeak(agent)
})

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1]) * 1024
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

interface RawConn {
  socket: Socket
  closedAt?: number
  closed: Promise<void>
}

/** A raw TCP connection from `localAddress` (any of 127.0.0.0/8 works on Linux). */
async function rawTcp(localAddress = '127.0.0.1'): Promise<RawConn> {
  const socket = connect({ host: '127.0.0.1', port, localAddress })
  const conn: RawConn = {
    socket,
    closed: new Promise(resolve =>
      socket.once('close', () => {
        conn.closedAt = Date.now()
        resolve()
      }),
    ),
  }
  socket.on('error', () => {}) // resets are expected
  await new Promise<void>(resolve => {
    socket.once('connect', resolve)
    socket.once('close', resolve)
  })
  return conn
}

/** A raw WebSocket upgrade on a TCP socket (so that the test can send a partial frame). */
async function rawUpgrade(): Promise<RawConn> {
  const conn = await rawTcp()
  conn.socket.write(
    [
      'GET / HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
      '',
      '',
    ].join('\r\n'),
  )
  await new Promise<void>((resolve, reject) => {
    conn.socket.once('data', d => (/^HTTP\/1\.1 101/.test(String(d)) ? resolve() : reject(new Error(String(d)))))
  })
  return conn
}

/** A masked client text frame header announcing `length` payload bytes. */
function frameHeader(length: number): Buffer {
  const h = Buffer.alloc(14)
  h[0] = 0x81
  h[1] = 0x80 | 127
  h.writeBigUInt64BE(BigInt(length), 2)
  h.writeUInt32BE(0x11223344, 10)
  return h
}

async function openWs(localAddress?: string): Promise<{ ws: WebSocket; messages: string[]; closed: Promise<number> }> {
  const ws = new WebSocket(agent.url, { localAddress })
  const messages: string[] = []
  ws.on('message', d => messages.push(String(d)))
  const closed = new Promise<number>(resolve => ws.once('close', code => resolve(code)))
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  return { ws, messages, closed }
}

function hello(token = agent.token): string {
  return JSON.stringify({ t: 'hello', protocol: PROTOCOL_VERSION, token, client: { name: 'hostile', pid: 1 } })
}

test('raw TCP connections that never send a byte are closed at the deadline', { timeout: 60_000 }, async () => {
  const start = Date.now()
  const conns = await Promise.all(Array.from({ length: 20 }, () => rawTcp()))
  await Promise.all(conns.map(c => c.closed))
  const took = Date.now() - start
  assert.ok(took < 10_000, `closed after ${took} ms`)
  assert.ok(
    conns.every(c => (c.closedAt ?? 0) - start >= 4000),
    'none closed before the deadline (they were admitted)',
  )
  await waitFor(() => /closed an unauthenticated connection .*no authentication within/.test(agent.log()), 2000, 'log')
})

test('a flood of 400 connections from one address: all but 32 turned away, controllers keep working', {
  timeout: 60_000,
}, async () => {
  const fdsBefore = openFds(agent.pid)
  const start = Date.now()
  const conns = await Promise.all(Array.from({ length: 400 }, () => rawTcp('127.0.0.1')))
  // The caps act at accept: everything above the per-peer cap is closed at once.
  await waitFor(() => conns.filter(c => c.closedAt).length >= 400 - 32, 3000, 'turned-away connections closed')
  const open = conns.filter(c => !c.closedAt).length
  assert.ok(open <= 32, `${open} connections from one address still open`)
  assert.ok(openFds(agent.pid) <= fdsBefore + 32 + 4, `agent fds ${openFds(agent.pid)} (before ${fdsBefore})`)
  // The live session works (files and exec), and a new controller from another address gets in.
  await live.service('files').write(join(agent.root, 'during-flood'), 'ok')
  assert.equal((await live.service('exec').run({ argv: ['true'] })).exitCode, 0)
  const other = await openWs('127.0.0.2')
  other.ws.send(hello())
  await waitFor(() => other.messages.length > 0, 5000, 'welcome')
  assert.match(other.messages[0], /"welcome"/)
  other.ws.close()
  await Promise.all(conns.map(c => c.closed))
  assert.ok(Date.now() - start < 10_000)
  assert.match(agent.log(), /turned away unauthenticated connections/)
})

test('connections from many addresses: at most 128 unauthenticated in all', { timeout: 60_000 }, async () => {
  const fdsBefore = openFds(agent.pid)
  const conns: RawConn[] = []
  for (let a = 10; a < 16; a++) {
    conns.push(...(await Promise.all(Array.from({ length: 32 }, () => rawTcp(`127.0.0.${a}`)))))
  }
  await waitFor(() => conns.filter(c => c.closedAt).length >= conns.length - 128, 3000, 'turned away')
  const open = conns.filter(c => !c.closedAt).length
  assert.ok(open <= 128, `${open} unauthenticated connections open`)
  assert.ok(openFds(agent.pid) <= fdsBefore + 128 + 4, `agent fds ${openFds(agent.pid)} (before ${fdsBefore})`)
  for (const c of conns) c.socket.destroy()
  await Promise.all(conns.map(c => c.closed))
})

test('16 half-sent 64 MiB first frames are cut off after a few KiB: agent memory stays small', {
  timeout: 60_000,
}, async () => {
  const rssBefore = rssBytes(agent.pid)
  const conns = await Promise.all(Array.from({ length: 16 }, () => rawUpgrade()))
  const chunk = Buffer.alloc(256 * 1024, 0x61)
  await Promise.all(
    conns.map(async c => {
      c.socket.write(frameHeader(64 * 1024 * 1024))
      // Up to 4 MiB of the announced 64 MiB, then stall (as a half-sent frame does).
      for (let i = 0; i < 16 && !c.closedAt; i++) {
        if (!c.socket.write(chunk)) await Promise.race([new Promise(r => c.socket.once('drain', r)), c.closed])
      }
    }),
  )
  await Promise.race([
    Promise.all(conns.map(c => c.closed)),
    new Promise((_, reject) => setTimeout(() => reject(new Error('half-sent frames not cut off')), 3000)),
  ])
  const grown = rssBytes(agent.pid) - rssBefore
  assert.ok(grown < 64 * 1024 * 1024, `agent RSS grew by ${Math.round(grown / 1048576)} MiB`)
  assert.match(agent.log(), /sent more than 65536 bytes before the hello was accepted/)
  assert.equal(await live.service('facts').ping('after'), 'after')
})

test('a hello larger than the cap is refused naming the limit', { timeout: 60_000 }, async () => {
  const big = JSON.stringify({
    t: 'hello',
    protocol: PROTOCOL_VERSION,
    token: agent.token,
    client: { name: 'x'.repeat(20_000), pid: 1 },
  })
  const c = await openWs()
  c.ws.send(big)
  assert.equal(await c.closed, 4001)
  assert.match(c.messages[0], new RegExp(`more than ${MAX_HELLO_BYTES}`))
})

test('a call pipelined right behind the hello is answered after the welcome, every time', {
  timeout: 60_000,
}, async () => {
  for (let round = 0; round < 20; round++) {
    const c = await openWs()
    c.ws.send(hello())
    c.ws.send(JSON.stringify({ t: 'q', i: `p${round}`, m: 'facts.ping', a: [round] }))
    await waitFor(() => c.messages.length >= 2, 5000, `round ${round}: welcome and answer`)
    assert.match(c.messages[0], /"welcome"/)
    assert.deepEqual(JSON.parse(c.messages[1]), { t: 's', i: `p${round}`, r: round })
    c.ws.close()
  }
})

test('a call pipelined behind a wrong-token hello never runs', { timeout: 60_000 }, async () => {
  const marker = join(agent.root, 'pipelined-marker')
  const c = await openWs()
  c.ws.send(hello('wrong-token-wrong-token'))
  c.ws.send(JSON.stringify({ t: 'q', i: 'w', m: 'files.write', a: [marker, 'pwned'] }))
  assert.equal(await c.closed, 4001)
  assert.match(c.messages[0], /wrong token/)
  assert.equal(c.messages.length, 1)
  await new Promise(r => setTimeout(r, 200))
  assert.equal(existsSync(marker), false)
  assert.ok(alive(agent.pid))
})
