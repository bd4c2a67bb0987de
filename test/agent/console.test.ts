// The `console` service through a real agent: a shell in a real tiny-guest VM owned by another session (as a
// paused `vt test --debug` run owns it), and a shell on the host in a pseudo-terminal. Commands run and their
// output comes back, Ctrl-C reaches the remote foreground program, the window size is passed on, a wrong
// session secret is refused, and nothing is left behind.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { after, before, test } from 'node:test'
import type { AgentClient } from '../../src/cluster/client.ts'
import type { ConsoleOpenRequest } from '../../src/protocol/console.ts'
import type { VtRemoteError } from '../../src/protocol/errors.ts'
import { requires } from '../helpers/requirements.ts'
import { qemuProcesses } from '../vm/helpers.ts'
import { alive, startTestAgent, type TestAgent, waitFor } from './helpers.ts'

let agent: TestAgent
before(async () => {
  agent = await startTestAgent()
})
after(async () => {
  await agent.dispose()
  assert.deepEqual(qemuProcesses(agent.dir), [], 'no QEMU left')
})

/** A console on a stream of `client`: what it printed, typing into it, waiting for text. */
async function openTerminal(client: AgentClient, target: ConsoleOpenRequest['target'], cols = 100, rows = 30) {
  let text = ''
  const closed: { reason: string; exitCode?: number }[] = []
  const stream = client.newStream(chunk => {
    text += chunk.toString('utf8')
  })
  client.on('console', 'closed', ev => {
    if (ev.stream === stream) closed.push(ev)
  })
  const opened = await client.service('console').open({ target, stream, cols, rows, term: 'xterm' })
  return {
    opened,
    stream,
    closed,
    output: () => text,
    type: (s: string) => client.sendChunk(stream, Buffer.from(s)),
    async expect(re: RegExp, what: string) {
      await waitFor(() => re.test(text), 60_000, `${what} (output so far: ${JSON.stringify(text.slice(-400))})`)
    },
    close: () => client.service('console').close(stream),
  }
}

test('a shell in a VM of another session: commands, Ctrl-C, window size, takeover, wrong secret', async t => {
  if (!requires(t, 'qemu')) return
  const owner = await agent.connect()
  const other = await agent.connect()
  try {
    await owner.service('vm').create({ name: 'g1', memory: '128M' })
    const ownerRef = { session: owner.session.id, secret: owner.session.secret }

    const wrong = await other
      .service('console')
      .open({
        target: { kind: 'vm', name: 'g1', owner: { ...ownerRef, secret: 'x'.repeat(32) } },
        stream: 90,
        cols: 80,
        rows: 24,
      })
      .then(
        () => undefined,
        (e: VtRemoteError) => e,
      )
    assert.match(String(wrong?.message), /no live session with that id and secret/)

    const term = await openTerminal(other, { kind: 'vm', name: 'g1', owner: ownerRef }, 123, 45)
    assert.match(term.opened.label, /VM g1 on host testhost/)
    await term.type('echo sum=$((6*7))\n')
    await term.expect(/sum=42/, 'the command output')
    await term.type('stty size\n')
    await term.expect(/45 123/, 'the window size set on the guest tty')
    await other.service('console').resize(term.stream, 101, 33)
    await waitFor(
      async () => {
        await term.type('stty size\n')
        await new Promise(r => setTimeout(r, 300))
        return /33 101/.test(term.output())
      },
      30_000,
      'the new window size',
    )
    // Ctrl-C reaches the guest's foreground program: the shell answers again at once.
    await term.type('sleep 600 && echo after-sleep\n')
    await new Promise(r => setTimeout(r, 500))
    await term.type('\x03echo interrupted-$((1+1))\n')
    await term.expect(/interrupted-2/, 'the shell after Ctrl-C')
    assert.doesNotMatch(term.output(), /\nafter-sleep/, 'the sleep was interrupted, so its && part never ran')

    // A second attach takes the console over; the first one hears why.
    const second = await openTerminal(owner, { kind: 'vm', name: 'g1', owner: ownerRef })
    await waitFor(() => term.closed.length === 1, 10_000, 'the first console to be closed')
    assert.match(term.closed[0].reason, /another vt console attached/)
    await second.type('echo second=$((2*3))\n')
    await second.expect(/second=6/, 'the second console')
    await second.close()
    // The command channel is untouched by all this.
    const r = await owner.service('vm').exec('g1', { command: 'echo channel-ok' })
    assert.equal(Buffer.from(r.stdout).toString().trim(), 'channel-ok')
  } finally {
    await other.close()
    await owner.close()
  }
})

test('a shell on the host: a real terminal, its exit code, and nothing left after a detach', async () => {
  const client = await agent.connect()
  try {
    const term = await openTerminal(client, { kind: 'host' }, 97, 31)
    assert.match(term.opened.label, /host testhost/)
    await term.type('tty; stty size; echo host-sum=$((20+22))\n')
    await term.expect(/host-sum=42/, 'the command output')
    assert.match(term.output(), /\/dev\/pts\/\d+/, 'a pseudo-terminal')
    assert.match(term.output(), /31 97/, 'the window size')
    await term.type('exit 3\n')
    await waitFor(() => term.closed.length === 1, 10_000, 'the shell to exit')
    assert.equal(term.closed[0].exitCode, 3)

    // A detach ends the shell and what runs in it.
    const second = await openTerminal(client, { kind: 'host' })
    await second.type('sleep 600 & echo bg=$!\n')
    await second.expect(/bg=(\d+)/, 'the background pid')
    const pid = Number(/bg=(\d+)/.exec(second.output())?.[1])
    assert.ok(alive(pid))
    await second.close()
    await waitFor(() => !alive(pid), 10_000, 'the host shell and its children to be gone')
  } finally {
    await client.close()
  }
})

test('a confined agent refuses a host shell', async () => {
  const confined = await startTestAgent({ extraArgs: ['--confined'] })
  try {
    const client = await confined.connect()
    const e = await client
      .service('console')
      .open({ target: { kind: 'host' }, stream: 1, cols: 80, rows: 24 })
      .then(
        () => undefined,
        (err: VtRemoteError) => err,
      )
    assert.equal(e?.code, 'CONFINED')
    await client.close()
  } finally {
    await confined.dispose()
  }
  assert.equal(existsSync(confined.dir), false)
})
