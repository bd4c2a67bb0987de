// `vt test --debug` and `vt console` for real: a run on an embedded cluster pauses at test.debug() with its VM
// alive; `vt console` (in a pseudo-terminal of its own, from script(1)) runs commands in the VM and on the host
// and gets their output; Enter lets the test go on and it sees what the console did. Then a run that pauses
// after a failure is stopped with Ctrl-C: VMs, agents and the state file are gone.
import assert from 'node:assert/strict'
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { type TestContext, test } from 'node:test'
import { requires } from '../helpers/requirements.ts'
import { qemuProcesses } from '../vm/helpers.ts'
import { project, runVt, vtBin } from './helpers.ts'

interface Pty {
  child: ChildProcessWithoutNullStreams
  output(): string
  type(text: string): void
  waitFor(re: RegExp, what: string, timeoutMs?: number): Promise<void>
  exited: Promise<number | null>
}

/** Runs `vt <args>` in a pseudo-terminal (script(1)), as from an interactive shell; we type into it. */
function inPty(t: TestContext, cwd: string, args: string, env: Record<string, string>): Pty {
  const { NODE_TEST_CONTEXT: _, ...parentEnv } = process.env
  const child = spawn('script', ['-qfec', `${process.execPath} ${vtBin} ${args}`, '/dev/null'], {
    cwd,
    env: { ...parentEnv, COLUMNS: '120', LINES: '40', TERM: 'xterm', CI: '', NO_COLOR: '1', ...env },
  })
  let text = ''
  child.stdout.on('data', d => {
    text += d
  })
  child.stderr.on('data', d => {
    text += d
  })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  return {
    child,
    output: () => text,
    type: s => child.stdin.write(s),
    async waitFor(re, what, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs
      while (!re.test(text)) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`no ${what} in the output of vt ${args}:\n${text.slice(-3000)}`)
        await new Promise(r => setTimeout(r, 50))
      }
    },
    exited,
  }
}

function debugProject(t: TestContext, spec: string) {
  const p = project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'
export default defineConfig({ projects: [{ name: 'p', cluster: { hosts: 1 } }] })
`,
    'a.vt.ts': spec,
  })
  const debugDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-debug-test-'))
  t.after(() => fs.rmSync(debugDir, { recursive: true, force: true }))
  return { p, env: { VT_DEBUG_DIR: debugDir }, debugDir }
}

test('vt test --debug pauses at test.debug(); vt console reaches the VM and the host; Enter goes on', async t => {
  if (!requires(t, 'qemu')) return
  const name = `dbg-${randomBytes(4).toString('hex')}`
  const { p, env, debugDir } = debugProject(
    t,
    `import { expect, test } from 'vt'
test('looked at', async ({ createVm }) => {
  const vm = await createVm({ name: '${name}' })
  await vm.succeed('echo before > /root/mark')
  await test.debug()
  expect(await vm.succeed('cat /root/mark')).toBe('after\\n')
})
`,
  )
  const run = inPty(t, p.dir, 'test --debug --reporter list', env)
  await run.waitFor(/Press Enter to go on/, 'pause')
  assert.match(run.output(), /paused at test\.debug\(\) at a\.vt\.ts:5/)
  assert.match(run.output(), new RegExp(`vt console ${name}`))
  const [state] = fs.readdirSync(debugDir)
  assert.match(state, /^\d+\.json$/)
  assert.equal(fs.statSync(path.join(debugDir, state)).mode & 0o777, 0o600, 'the state file is private')

  const vm = inPty(t, p.dir, `console ${name}`, env)
  await vm.waitFor(/connected to VM/, 'the console banner')
  vm.type('echo vm-$((6*7)); echo after > /root/mark\n')
  await vm.waitFor(/vm-42/, 'the command output from the VM')
  vm.type('\x1d')
  assert.equal(await vm.exited, 0, vm.output())
  assert.match(vm.output(), /vt console: detached/)

  const host = inPty(t, p.dir, 'console --host host1', env)
  await host.waitFor(/connected to host host1/, 'the console banner')
  // It starts in the paused session's directory on the host, where the VMs' files are.
  host.type(`ls vms; echo host-$((6*7)) > ${p.dir}/host-mark; exit 7\n`)
  await host.waitFor(/vt console: the host shell exited/, 'the end of the host shell')
  assert.equal(await host.exited, 7, 'the host shell exit code')
  assert.match(
    host.output(),
    new RegExp(`${name}\\r*\\n`),
    "the VM's directory is listed: " + JSON.stringify(host.output()),
  )
  assert.equal(p.read('host-mark'), 'host-42\n')

  run.type('\n')
  assert.equal(await run.exited, 0, run.output())
  assert.match(run.output(), /1 passed/)
  assert.deepEqual(fs.readdirSync(debugDir), [], 'the state file is removed')
  assert.deepEqual(qemuProcesses(name), [], 'the VM is gone')
})

test('Ctrl-C at a pause after a failure tears everything down: VM, agents, namespaces, temp dirs, state file', async t => {
  if (!requires(t, 'qemu')) return
  const name = `dbg-${randomBytes(4).toString('hex')}`
  const { p, env, debugDir } = debugProject(
    t,
    `import { expect, test } from 'vt'
test('fails', async ({ createVm }) => {
  const vm = await createVm({ name: '${name}' })
  expect(await vm.succeed('echo 1')).toBe('2\\n')
})
`,
  )
  const run = inPty(t, p.dir, 'test --keep-on-failure --reporter list', env)
  await run.waitFor(/Press Enter to go on/, 'pause')
  assert.match(run.output(), /paused after a failure of fails \(a\.vt\.ts:2\): expect\(received\)\.toBe\(expected\)/)
  assert.equal(qemuProcesses(name).length, 1, 'the VM is alive during the pause')
  // The run's embedded cluster: its directory holds the session named in the state file.
  const [file] = fs.readdirSync(debugDir)
  const state = JSON.parse(fs.readFileSync(path.join(debugDir, file), 'utf8'))
  const sessionId: string = state.hosts[0].session.id
  const clusterDir = fs
    .readdirSync(os.tmpdir())
    .filter(d => /^vt-cluster-[0-9a-f]+$/.test(d))
    .map(d => path.join(os.tmpdir(), d))
    .find(d => fs.existsSync(path.join(d, 'host1/state/sessions', sessionId)))
  assert.ok(clusterDir, 'the cluster directory of the paused run')
  const runId = path.basename(clusterDir).slice('vt-cluster-'.length)

  run.type('\x03')
  assert.equal(await run.exited, 130, run.output())
  assert.match(run.output(), /1 failed/)
  assert.deepEqual(qemuProcesses(name), [], 'no QEMU left')
  assert.deepEqual(fs.readdirSync(debugDir), [], 'no state file left')
  assert.equal(fs.existsSync(clusterDir), false, 'the cluster directory is removed')
  const netns = fs.existsSync('/run/netns')
    ? fs.readdirSync('/run/netns').filter(n => n.startsWith(`vt-${runId}-`))
    : []
  assert.deepEqual(netns, [], 'no namespace of the run left')
})

test('without --debug, test.debug() does nothing and says so; vt console without a paused run says how', async t => {
  const p = project(t, {
    'a.vt.ts': `import { test } from 'vt'
test('t', async () => {
  await test.debug()
})
`,
  })
  const debugDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-debug-test-'))
  t.after(() => fs.rmSync(debugDir, { recursive: true, force: true }))
  const r = await runVt(p, [], { env: { VT_DEBUG_DIR: debugDir } })
  assert.equal(r.exitCode, 0, r.output)
  assert.match(r.output, /vt: test\.debug\(\) at .*a\.vt\.ts:3:\d+ does nothing without vt test --debug/)

  const { spawnSync } = await import('node:child_process')
  const c = spawnSync(process.execPath, [vtBin, 'console', 'web'], {
    cwd: p.dir,
    encoding: 'utf8',
    env: { ...process.env, VT_DEBUG_DIR: debugDir },
  })
  assert.equal(c.status, 1)
  assert.match(c.stderr, /vt console: no paused run: start one with `vt test --debug`/)
})
