// The QGA client and exec/files over it, against a real qemu-ga running on this host (unix-listen mode: the
// same agent and protocol as in a guest, without booting one). Commands run on the host, in a temp dir.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { QgaClient, QgaError } from '../../agent/qga/client.ts'
import { QgaGuest } from '../../agent/qga/guest.ts'
import { GuestTimeoutError } from '../../agent/vm/guest.ts'
import { machine, requires } from '../helpers/requirements.ts'

const dir = mkdtempSync(join(tmpdir(), 'vt-qga-test-'))
const sock = join(dir, 'qga.sock')
let agent: ChildProcess | undefined
let client: QgaClient
let guest: QgaGuest
const abort = new AbortController()

/** Running, not a zombie waiting for its new parent to reap it. */
function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

describe('qemu-guest-agent client', { skip: !machine.qga && !process.env.CI && 'needs qemu-ga' }, () => {
  before(async () => {
    const bin = existsSync('/usr/sbin/qemu-ga') ? '/usr/sbin/qemu-ga' : 'qemu-ga'
    agent = spawn(bin, ['-m', 'unix-listen', '-p', sock, '-t', dir], { stdio: 'ignore' })
    client = new QgaClient(sock, 'test agent')
    await client.connect(abort.signal, 10_000)
    guest = new QgaGuest(client, 'test agent')
  })

  after(async () => {
    client?.close('test done')
    if (agent?.pid && alive(agent.pid)) {
      const gone = new Promise(r => agent?.once('exit', r))
      agent.kill('SIGKILL')
      await gone
    }
    rmSync(dir, { recursive: true, force: true })
  })

  test('syncs, then answers commands; errors carry the class and text', async t => {
    if (!requires(t, 'qga')) return
    await client.sync(10_000)
    const info = await client.execute<{ version: string }>('guest-info')
    assert.match(info.version, /^\d+\.\d+/)
    const err = await client.execute('guest-no-such-command').catch(e => e)
    assert.ok(err instanceof QgaError && err.code === 'command', String(err))
    assert.match(err.message, /test agent: the guest agent refused guest-no-such-command: CommandNotFound/)
  })

  test('a late answer to a timed-out request is not taken for the next one', async t => {
    if (!requires(t, 'qga')) return
    // A stopped agent answers after the caller gave up; the answer must be dropped, not given to the next call.
    const pid = agent?.pid as number
    process.kill(pid, 'SIGSTOP')
    let slow: unknown
    try {
      slow = await client.execute('guest-info', undefined, { timeoutMs: 300 }).catch(e => e)
    } finally {
      process.kill(pid, 'SIGCONT')
    }
    assert.ok(slow instanceof QgaError && slow.code === 'timeout', String(slow))
    assert.match((slow as Error).message, /did not answer guest-info within 300 ms/)
    const ping = await client.execute('guest-ping')
    assert.deepEqual(ping, {})
  })

  test('exec: stdout and stderr apart, exit codes, variables, signals', async t => {
    if (!requires(t, 'qga')) return
    const r = await guest.exec('echo out; echo err >&2; echo "$GREETING"; exit 7', {
      env: { GREETING: 'it\'s "quoted" $HOME' },
    })
    assert.equal(r.stdout.toString(), `out\nit's "quoted" $HOME\n`)
    assert.equal(r.stderr.toString(), 'err\n')
    assert.equal(r.exitCode, 7)
    const bin = await guest.exec('i=0; while [ $i -lt 256 ]; do printf "\\\\$(printf %o $i)"; i=$((i+1)); done')
    assert.deepEqual(
      [...bin.stdout],
      Array.from({ length: 256 }, (_, i) => i),
    )
    assert.equal((await guest.exec('kill -TERM $$')).exitCode, 128 + 15)
  })

  test('exec timeout: the error says so and the whole process tree is killed', async t => {
    if (!requires(t, 'qga')) return
    const marker = join(dir, 'tree')
    const err = await guest
      .exec(`sleep 300 & echo $! > ${marker}.bg; sh -c 'echo $$ > ${marker}.fg; sleep 301'`, { timeoutMs: 1500 })
      .catch(e => e)
    assert.ok(err instanceof GuestTimeoutError, String(err))
    assert.match(err.message, /did not finish within 1500 ms \(its processes were killed\)/)
    for (const f of ['bg', 'fg']) {
      const pid = Number(readFileSync(`${marker}.${f}`, 'utf8'))
      assert.ok(pid > 0 && !alive(pid), `the ${f} process ${pid} still runs`)
    }
    assert.equal((await guest.exec('echo still fine')).stdout.toString(), 'still fine\n')
  })

  test('files: write then read back any bytes, chunked, with a mode; a missing file is named', async t => {
    if (!requires(t, 'qga')) return
    const data = Buffer.alloc(700 * 1024)
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 256
    const path = join(dir, 'blob')
    await guest.writeFile(path, data, { mode: 0o640 })
    assert.deepEqual(readFileSync(path), data)
    assert.equal(statSync(path).mode & 0o777, 0o640)
    writeFileSync(join(dir, 'small'), 'hello\0world')
    assert.deepEqual(await guest.readFile(join(dir, 'small')), Buffer.from('hello\0world'))
    assert.deepEqual(await guest.readFile(path), data)
    await assert.rejects(
      guest.readFile(join(dir, 'nope')),
      /test agent: cannot read .*nope in the guest: .*No such file/,
    )
    await assert.rejects(guest.readFile(path, { maxBytes: 1000 }), /has more than 1000 bytes/)
  })
})
