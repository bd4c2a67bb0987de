// The QMP client against a real QEMU (`-machine none` boots nothing, which is enough for the protocol).
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import {
  CommandNotFoundError,
  GenericError,
  QmpClient,
  QmpConnectError,
  QmpDisconnectedError,
  QmpEventTimeoutError,
  QmpTimeoutError,
} from '../../agent/qmp/index.ts'
import { requires } from '../helpers/requirements.ts'

const dir = mkdtempSync(join(tmpdir(), 'vt-qmp-test-'))
const procs = new Set<ChildProcess>()
let n = 0

function startQemu(): { proc: ChildProcess; sock: string; exited: Promise<void> } {
  const sock = join(dir, `qmp-${n++}.sock`)
  const proc = spawn(
    'qemu-system-x86_64',
    ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`],
    { stdio: 'ignore' },
  )
  procs.add(proc)
  const exited = new Promise<void>(resolve => proc.once('exit', () => resolve()))
  void exited.then(() => procs.delete(proc))
  return { proc, sock, exited }
}

after(() => {
  for (const p of procs) p.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

test('connects, negotiates and runs typed commands', async t => {
  if (!requires(t, 'qemu')) return
  const { sock, exited } = startQemu()
  const qmp = await QmpClient.connect(sock, { label: 'test-vm' })
  assert.match(qmp.version, /^\d+\.\d+\.\d+$/)
  const status = await qmp.execute('query-status')
  assert.equal(typeof status.running, 'boolean')
  assert.equal(typeof status.status, 'string')
  const hmp = await qmp.execute('human-monitor-command', { 'command-line': 'info version' })
  assert.ok(hmp.includes(qmp.version.split('.').slice(0, 2).join('.')), hmp)
  const commands = await qmp.execute('query-commands')
  assert.ok(commands.some(c => c.name === 'migrate'))
  // Concurrent commands are matched to their own replies.
  const results = await Promise.all([
    qmp.execute('query-name'),
    qmp.execute('query-status'),
    qmp.execute('query-version'),
  ])
  assert.deepEqual(results[2].qemu, (await qmp.execute('query-version')).qemu)
  const text = qmp.transcriptText()
  assert.match(text, /-> qmp_capabilities/)
  assert.match(text, /-> query-status \(vt-\d+\)/)
  assert.match(text, /<- vt-\d+ ok/)
  await qmp.quit()
  assert.match(await qmp.closed, /closed/)
  await exited
})

test('unknown command is a CommandNotFoundError carrying command and args; bad args a GenericError', async t => {
  if (!requires(t, 'qemu')) return
  const { sock, proc } = startQemu()
  const qmp = await QmpClient.connect(sock)
  const err = await qmp.execute('no-such-command', { a: 1 }).then(
    () => assert.fail('should reject'),
    e => e,
  )
  assert.ok(err instanceof CommandNotFoundError, String(err))
  assert.equal(err.command, 'no-such-command')
  assert.deepEqual(err.args, { a: 1 })
  assert.equal(err.errorClass, 'CommandNotFound')
  assert.match(err.message, /no-such-command \{"a":1\}.*CommandNotFound/)
  const bad = await qmp.execute('device_del', { id: 'nope' }).then(
    () => assert.fail('should reject'),
    e => e,
  )
  assert.ok(bad instanceof GenericError || bad.errorClass === 'DeviceNotFound', String(bad))
  assert.match(qmp.transcriptText(), /CommandNotFound/)
  // Bad input is refused before it reaches QEMU.
  await assert.rejects(qmp.execute(''), /non-empty string/)
  await assert.rejects(qmp.execute('query-status', [1] as never), /must be an object/)
  // The connection still works after errors.
  assert.equal(typeof (await qmp.execute('query-status')).running, 'boolean')
  qmp.close()
  proc.kill('SIGKILL')
})

test('events: waitForEvent, the async stream, the backlog via mark(), timeouts', async t => {
  if (!requires(t, 'qemu')) return
  const { sock, proc } = startQemu()
  const qmp = await QmpClient.connect(sock)
  const seen: string[] = []
  const stream = (async () => {
    for await (const ev of qmp.events(['STOP', 'RESUME'])) {
      seen.push(ev.event)
      if (seen.length === 2) break
    }
  })()
  const mark = qmp.mark()
  const stopped = qmp.waitForEvent('STOP', { timeout: 5000 })
  await qmp.execute('stop')
  const ev = await stopped
  assert.equal(ev.event, 'STOP')
  assert.equal(typeof ev.timestamp.seconds, 'number')
  // An event that already happened is found through the backlog when `since` is given.
  const again = await qmp.waitForEvent('STOP', { since: mark, timeout: 100 })
  assert.equal(again.event, 'STOP')
  await qmp.execute('cont')
  await stream
  assert.deepEqual(seen, ['STOP', 'RESUME'])
  await assert.rejects(qmp.waitForEvent('STOP', { timeout: 100 }), QmpEventTimeoutError)
  // A predicate filters on the event data.
  const shutdown = qmp.waitForEvent<{ guest: boolean }>('SHUTDOWN', { predicate: d => d.guest === false })
  await qmp.quit()
  assert.equal((await shutdown).data?.guest, false)
  assert.match(qmp.transcriptText(), /<= STOP/)
  proc.kill('SIGKILL')
})

test('a hung QEMU times out; a killed one fails pending calls with QmpDisconnectedError', async t => {
  if (!requires(t, 'qemu')) return
  const { sock, proc, exited } = startQemu()
  const qmp = await QmpClient.connect(sock, { label: 'vm-x' })
  proc.kill('SIGSTOP')
  const err = await qmp.execute('query-status', undefined, { timeout: 200 }).then(
    () => assert.fail('should time out'),
    e => e,
  )
  assert.ok(err instanceof QmpTimeoutError)
  assert.match(err.message, /query-status got no reply within 200 ms/)
  const pending = qmp.execute('query-name')
  const waiting = qmp.waitForEvent('RESUME', { timeout: 10_000 })
  const t0 = Date.now()
  proc.kill('SIGKILL')
  await assert.rejects(pending, (e: Error) => e instanceof QmpDisconnectedError && /query-name.*vm-x/.test(e.message))
  await assert.rejects(waiting, QmpDisconnectedError)
  assert.ok(Date.now() - t0 < 3000)
  await assert.rejects(qmp.execute('query-status'), QmpDisconnectedError)
  await exited
})

test('connect waits for a socket that appears later, and fails clearly for one that never does', async t => {
  if (!requires(t, 'qemu')) return
  await assert.rejects(
    QmpClient.connect(join(dir, 'missing.sock'), { connectTimeout: 300 }),
    (e: Error) => e instanceof QmpConnectError && /missing\.sock within 300 ms/.test(e.message),
  )
  const sock = join(dir, `late-${n}.sock`)
  const connecting = QmpClient.connect(sock, { connectTimeout: 10_000 })
  await delay(300)
  const proc = spawn(
    'qemu-system-x86_64',
    ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`],
    { stdio: 'ignore' },
  )
  procs.add(proc)
  const qmp = await connecting
  assert.equal(typeof (await qmp.execute('query-status')).running, 'boolean')
  await qmp.quit()
  await new Promise(resolve => proc.once('exit', resolve))
  procs.delete(proc)
})
