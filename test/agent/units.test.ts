// Small pure parts of the control plane: sizes, listen addresses, log slicing, error data, wire encoding,
// frame checks, /proc parsing and root confinement.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { sliceLog } from '../../agent/log.ts'
import { parseListen } from '../../agent/options.ts'
import { Roots } from '../../agent/roots.ts'
import { readSessionFile } from '../../agent/sessions.ts'
import { parseSize } from '../../src/cluster/cluster.ts'
import { fromErrorData, toErrorData, VtError, VtRemoteError } from '../../src/protocol/errors.ts'
import { checkRpcFrame, decodeJson, decodeStreamChunk, encodeJson, encodeStreamChunk } from '../../src/protocol/wire.ts'
import { readStat, treeOf } from '../../src/util/proc.ts'

test('parseSize', () => {
  assert.equal(parseSize('512M'), 512 * 1024 ** 2)
  assert.equal(parseSize('2G'), 2 * 1024 ** 3)
  assert.equal(parseSize('1.5K'), 1536)
  assert.equal(parseSize('64MiB'), 64 * 1024 ** 2)
  assert.equal(parseSize(4096), 4096)
  assert.throws(() => parseSize('lots'), /"lots" is not a size/)
})

test('parseListen', () => {
  assert.deepEqual(parseListen('127.0.0.1:7070'), { host: '127.0.0.1', port: 7070 })
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 })
  assert.throws(() => parseListen('7070'), /is not HOST:PORT/)
  assert.throws(() => parseListen('h:99999'), /is not HOST:PORT/)
})

test('sliceLog keeps the lines of a time window', () => {
  const log = [
    '2026-01-01T00:00:01.000Z INFO a',
    '2026-01-01T00:00:02.000Z INFO b',
    '2026-01-01T00:00:03.000Z INFO c',
  ].join('\n')
  const t = (s: number) => Date.parse(`2026-01-01T00:00:0${s}.000Z`)
  assert.equal(sliceLog(log, t(2), t(3)), `${log.split('\n').slice(1).join('\n')}\n`)
  assert.equal(sliceLog(log, t(4)), '')
})

test('errors travel as data and come back naming host, service and call', () => {
  const inner = new VtError('NotFoundError', 'no such file', { code: 'ENOENT' })
  const data = toErrorData(new Error('outer', { cause: inner }), { host: 'h1', service: 'files', call: 'stat' })
  assert.deepEqual(JSON.parse(JSON.stringify(data)), data)
  assert.equal(data.cause?.code, 'ENOENT')
  const back = fromErrorData(data)
  assert.ok(back instanceof VtRemoteError)
  assert.equal(back.message, 'h1: files.stat: outer')
  assert.ok(back.cause instanceof VtRemoteError)
  // Anything that is not error data becomes an InternalError, never a crash.
  assert.equal(fromErrorData(42).name, 'InternalError')
  assert.equal(toErrorData('plain string').message, 'plain string')
  assert.equal(toErrorData(null).name, 'Error')
})

test('wire: bytes round trip inside JSON; stream chunks carry their id', () => {
  const value = { a: Buffer.from([0, 1, 255]), nested: [new Uint8Array([7])], s: 'x' }
  const back = decodeJson(encodeJson(value)) as { a: Buffer; nested: Buffer[]; s: string }
  assert.deepEqual([...back.a], [0, 1, 255])
  assert.deepEqual([...back.nested[0]], [7])
  assert.equal(back.s, 'x')
  const frame = encodeStreamChunk(0xdeadbeef, Buffer.from('data'))
  assert.deepEqual(decodeStreamChunk(frame), { stream: 0xdeadbeef, chunk: Buffer.from('data') })
  assert.equal(decodeStreamChunk(Buffer.from([1, 2])), undefined)
})

test('checkRpcFrame', () => {
  assert.equal(checkRpcFrame({ t: 'q', i: '1', m: 'facts.ping', a: [] }), undefined)
  assert.equal(checkRpcFrame({ t: 's', i: '1', r: 1 }), undefined)
  assert.match(checkRpcFrame([]) as string, /not a JSON object/)
  assert.match(checkRpcFrame({ t: 'q', m: 'x', a: {} }) as string, /"a" must be an array/)
  assert.match(checkRpcFrame({ t: 'q', i: 'x'.repeat(65), m: 'x', a: [] }) as string, /"i"/)
  assert.match(checkRpcFrame({ t: 'z' }) as string, /unknown frame type/)
})

test('/proc: our own stat, and a tree that never includes the caller', () => {
  const self = readStat(process.pid)
  assert.equal(self?.pid, process.pid)
  assert.equal(self?.ppid, process.ppid)
  assert.ok((self?.startTime ?? 0) > 0)
  assert.equal(readStat(0x7ffffffe), undefined)
  assert.ok(!treeOf(process.pid, self?.startTime, true).includes(process.pid))
  // A wrong start time means "not the same process": nothing to kill.
  assert.deepEqual(treeOf(process.ppid, 1, true), [])
})

test('Roots: inside, outside, .., symlinks, missing components', async () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'vt-roots-'))
  try {
    mkdirSync(join(dir, 'root', 'sub'), { recursive: true })
    mkdirSync(join(dir, 'out'))
    symlinkSync(join(dir, 'out'), join(dir, 'root', 'escape'))
    symlinkSync('/etc/nonexistent-vt', join(dir, 'root', 'dangling'))
    const roots = new Roots([join(dir, 'root')])
    assert.equal(
      await roots.resolve(join(dir, 'root', 'sub', 'new', 'deeper')),
      join(dir, 'root', 'sub', 'new', 'deeper'),
    )
    await assert.rejects(roots.resolve(join(dir, 'root', '..', 'out')), /outside the agent's allowed roots/)
    await assert.rejects(roots.resolve(join(dir, 'root', 'escape', 'x')), /resolves to .*out\/x/)
    await assert.rejects(roots.resolve('relative'), /must be absolute/)
    // The entry of a link is inside even when its target is not (removing the link is fine).
    assert.equal(await roots.resolveEntry(join(dir, 'root', 'escape')), join(dir, 'root', 'escape'))
    // A dangling link resolves to itself: writes replace the link, never create its target.
    assert.equal(await roots.resolve(join(dir, 'root', 'dangling')), join(dir, 'root', 'dangling'))
    assert.throws(() => new Roots([join(dir, 'missing')]), /does not exist/)
    assert.throws(() => new Roots(['rel']), /must be an absolute path/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('session journal: replays adds and removals, skips a torn last line, reads the snapshot format', () => {
  const header = JSON.stringify({ id: 's1', createdAt: 1, agentPid: 2, records: [] })
  const a = { id: 'r1', kind: 'path', path: '/x', createdAt: 1 }
  const b = { id: 'r2', kind: 'process', pid: 5, startTime: 9, createdAt: 2 }
  const text = [
    header,
    JSON.stringify({ add: a }),
    JSON.stringify({ add: b }),
    JSON.stringify({ del: 'r1' }),
    '{"add": {"id": "r3"',
  ].join('\n')
  assert.deepEqual(readSessionFile(text)?.records, [b])
  const snapshot = JSON.stringify({ id: 's2', createdAt: 1, agentPid: 2, records: [a] })
  assert.deepEqual(readSessionFile(snapshot)?.records, [a])
  assert.equal(readSessionFile(''), undefined)
  assert.equal(readSessionFile('{torn'), undefined)
})
