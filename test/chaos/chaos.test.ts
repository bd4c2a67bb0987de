// Chaos rounds against the real `vt test` on an embedded two-host cluster in network namespaces: the controller
// killed with -9 while tests hold processes and a VM, an agent killed with -9 mid-migration, Ctrl-C (SIGINT to
// the whole process group, as a terminal sends it) during a boot and during a migration, and two runs at once of
// which one crashes. After each round nothing of it may remain: QEMU processes, agents, their keepers, run
// watchers, processes the tests started, namespaces, veths, temp dirs, run records, agent cgroups. Each count
// must be 0.
// VT_CHAOS_ROUNDS repeats every scenario (default 1).
import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { type TestContext, test } from 'node:test'
import { plannedCgroup } from '../../agent/cgroup.ts'
import { type RunRecord, runDir } from '../../src/cluster/runs.ts'
import { waitFor } from '../agent/helpers.ts'
import { project, vtBin } from '../e2e/helpers.ts'
import { requires } from '../helpers/requirements.ts'

const ROUNDS = Number(process.env.VT_CHAOS_ROUNDS ?? 1)
const MiB = 1024 * 1024

const spec = `
import { existsSync, writeFileSync } from 'node:fs'
import { test } from 'vt'
const mark = (what: string) => writeFileSync(process.env.VT_CHAOS_MARK as string, what)
const sleep = process.env.VT_CHAOS_SLEEP as string

test('busy', async ({ cluster, createVm }) => {
  const [a, b] = cluster.hosts
  await a.spawn(\`sleep \${sleep}\`)
  void b.exec(\`sleep \${sleep}\`).catch(() => {})
  await createVm({ host: b })
  mark('busy')
  await new Promise(() => {})
})

test('boot', async ({ cluster, createVm }) => {
  mark('booting')
  await createVm({ host: cluster.hosts[0] })
  await new Promise(() => {})
})

test('migrate', async ({ cluster, createVm }) => {
  const [a, b] = cluster.hosts
  const vm = await createVm({ host: a, memory: '128M' })
  // Dirties memory all the time: at 8 MiB/s with a 1 ms downtime limit the migration never converges.
  await vm.succeed('(while :; do dd if=/dev/urandom of=/tmp/x bs=1M count=16 2>/dev/null; done) >/dev/null 2>&1 &')
  mark('migrating')
  await vm.migrate({ to: b, parameters: { 'max-bandwidth': ${8 * MiB}, 'downtime-limit': 1 } })
})

test('quick', async ({ cluster }) => {
  for (const h of cluster.hosts) await h.succeed('ip -o -4 addr show dev eth0')
  mark('quick')
})

test('waiting', async ({ cluster }) => {
  mark('waiting')
  while (!existsSync(process.env.VT_CHAOS_GO as string)) await new Promise(r => setTimeout(r, 50))
  for (const h of cluster.hosts) await h.succeed('ip -o -4 addr show dev eth0')
  mark('done')
})
`

interface Run {
  child: ChildProcess
  exited: Promise<number | null>
  output: () => string
  mark: string
  sleep: string
  dir: string
}

let nextSleep = 700_000 + Math.floor(Math.random() * 100_000)

function startRun(dir: string, grep: string): Run {
  const mark = path.join(dir, `mark-${grep}-${nextSleep}`)
  const sleep = String(nextSleep++)
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VT_CHAOS_MARK: mark,
    VT_CHAOS_SLEEP: sleep,
    VT_CHAOS_GO: path.join(dir, 'go'),
    NO_COLOR: '1',
  }
  delete env.NODE_TEST_CONTEXT
  // Its own process group, like a shell job: a SIGINT to the group is what a terminal's Ctrl-C sends.
  const child = spawn(process.execPath, [vtBin, 'test', '--grep', ` ${grep}$`, '--reporter', 'line'], {
    cwd: dir,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', d => (out += d))
  child.stderr?.on('data', d => (out += d))
  const exited = new Promise<number | null>(r => child.on('close', code => r(code)))
  return { child, exited, output: () => out, mark, sleep, dir }
}

async function marked(run: Run, what: string, timeoutMs = 90_000): Promise<void> {
  await waitFor(
    () => {
      if (run.child.exitCode !== null) throw new Error(`vt test exited early:\n${run.output()}`)
      return existsSync(run.mark) && readFileSync(run.mark, 'utf8') === what
    },
    timeoutMs,
    `the spec to mark "${what}"`,
  )
}

/** The run records whose controller is this `vt test` (its pid); remembers their agents' pids. */
function recordsOf(pid: number): RunRecord[] {
  const out: RunRecord[] = []
  for (const name of existsSync(runDir()) ? readdirSync(runDir()) : []) {
    if (!name.endsWith('.json')) continue
    try {
      const rec = JSON.parse(readFileSync(path.join(runDir(), name), 'utf8')) as RunRecord
      if (rec.pid !== pid) continue
      out.push(rec)
      agentsSeen.set(
        rec.runId,
        (rec.agents ?? []).map(a => a.pid),
      )
    } catch {}
  }
  return out
}

function cmdlines(): { pid: number; argv: string[] }[] {
  const out: { pid: number; argv: string[] }[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue
      out.push({ pid: Number(name), argv: readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0') })
    } catch {}
  }
  return out
}

const agentsSeen = new Map<string, number[]>()

/** Cgroups the run's agents made (agent/cgroup.ts): <cgroup2 mount>/<path>/vt-agent-<pid>, found by name. */
function cgroupsOf(pids: number[]): number {
  const planned = plannedCgroup()
  if (!planned) return 0
  return pids.filter(pid => existsSync(path.join(path.dirname(planned), `vt-agent-${pid}`))).length
}

/** Everything of one run still on the machine, counted by kind. */
function leftovers(runId: string, sleep: string): Record<string, number> {
  const procs = cmdlines()
  const base = path.join(os.tmpdir(), `vt-cluster-${runId}`)
  const mentions = (p: { argv: string[] }, s: string) => p.argv.some(a => a.includes(s))
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  return {
    qemu: procs.filter(p => p.argv[0].includes('qemu-system') && mentions(p, base)).length,
    agents: procs.filter(p => p.argv.some(a => a.endsWith('agent/main.ts')) && mentions(p, base)).length,
    keepers: procs.filter(p => mentions(p, 'vt-agent-keeper') && mentions(p, base)).length,
    watchers: procs.filter(p => p.argv.some(a => a.endsWith('cluster/watcher.ts')) && p.argv.includes(runId)).length,
    'test processes': procs.filter(p => p.argv[0] === 'sleep' && p.argv[1] === sleep).length,
    namespaces: namespaces.split('\n').filter(l => l.startsWith(`vt-${runId}-`)).length,
    veths: links.includes(`vt${runId}c`) ? 1 : 0,
    'temp dirs': existsSync(base) ? 1 : 0,
    'run records': existsSync(path.join(runDir(), `${runId}.json`)) ? 1 : 0,
    cgroups: cgroupsOf(agentsSeen.get(runId) ?? []),
  }
}

const total = (l: Record<string, number>) => Object.values(l).reduce((a, b) => a + b, 0)

/** Waits until the run left nothing (up to 20 s); returns how long that took after `since`. */
async function assertNothingLeft(t: TestContext, what: string, runId: string, sleep: string, since: number) {
  try {
    await waitFor(() => total(leftovers(runId, sleep)) === 0, 20_000, 'leftovers to go')
  } catch {
    assert.deepEqual(leftovers(runId, sleep), {}, `${what}: leftovers of run ${runId}`)
  }
  t.diagnostic(`${what}: 0 leftovers ${Date.now() - since} ms after the event`)
}

function chaosProject(t: TestContext) {
  return project(t, {
    'vt.config.ts': `import { defineConfig } from 'vt'
export default defineConfig({ timeout: 120_000, projects: [{ name: 'chaos', cluster: { hosts: 2, isolation: 'netns' } }] })
`,
    'chaos.vt.ts': spec,
  })
}

const runIdOf = (run: Run) => {
  const recs = recordsOf(run.child.pid as number)
  assert.equal(recs.length, 1, 'one embedded run record')
  return recs[0].runId
}

for (let round = 1; round <= ROUNDS; round++) {
  test(`round ${round}: vt test killed with -9 while tests hold processes and a VM`, { timeout: 180_000 }, async t => {
    if (!requires(t, 'netns', 'qemu')) return
    const p = chaosProject(t)
    const run = startRun(p.dir, 'busy')
    await marked(run, 'busy')
    const runId = runIdOf(run)
    assert.ok(leftovers(runId, run.sleep)['test processes'] >= 2, 'the spawned and exec processes run')
    assert.equal(leftovers(runId, run.sleep).qemu, 1, 'the VM runs')
    const killed = Date.now()
    process.kill(run.child.pid as number, 'SIGKILL')
    await run.exited
    await assertNothingLeft(t, 'controller kill -9', runId, run.sleep, killed)
  })

  test(`round ${round}: the source agent killed with -9 mid-migration`, { timeout: 180_000 }, async t => {
    if (!requires(t, 'netns', 'qemu')) return
    const p = chaosProject(t)
    const run = startRun(p.dir, 'migrate')
    await marked(run, 'migrating')
    const rec = recordsOf(run.child.pid as number)[0]
    await new Promise(r => setTimeout(r, 1500)) // into the stream
    const killed = Date.now()
    process.kill(rec.agents?.[0]?.pid as number, 'SIGKILL')
    const code = await run.exited
    const ms = Date.now() - killed
    t.diagnostic(`vt test ended ${ms} ms after the source agent's kill -9 (exit ${code})`)
    assert.equal(code, 1, run.output())
    assert.match(run.output(), /source QEMU on host1 is gone: the link to host host1's agent/)
    await assertNothingLeft(t, 'agent kill -9', rec.runId, run.sleep, killed)
  })

  for (const [grep, mark] of [
    ['boot', 'booting'],
    ['migrate', 'migrating'],
  ] as const) {
    test(`round ${round}: Ctrl-C (SIGINT to the process group) during a ${grep}`, { timeout: 180_000 }, async t => {
      if (!requires(t, 'netns', 'qemu')) return
      const p = chaosProject(t)
      const run = startRun(p.dir, grep)
      await marked(run, mark)
      const runId = runIdOf(run)
      if (grep === 'migrate') await new Promise(r => setTimeout(r, 1500))
      const sent = Date.now()
      process.kill(-(run.child.pid as number), 'SIGINT')
      const code = await run.exited
      t.diagnostic(`Ctrl-C during a ${grep}: vt test exited ${Date.now() - sent} ms after SIGINT (exit ${code})`)
      assert.equal(code, 130, run.output())
      await assertNothingLeft(t, `Ctrl-C during a ${grep}`, runId, run.sleep, sent)
    })
  }

  test(`round ${round}: a run killed with -9 (and its watcher), a live run, a new run starting: all clean`, {
    timeout: 180_000,
  }, async t => {
    if (!requires(t, 'netns', 'qemu')) return
    const p = chaosProject(t)
    const victim = startRun(p.dir, 'busy')
    const live = startRun(p.dir, 'waiting')
    await marked(victim, 'busy')
    await marked(live, 'waiting')
    const victimRec = recordsOf(victim.child.pid as number)[0]
    // Nobody cleans up after the victim but the next run: its cleanup must not touch the live run.
    process.kill(victimRec.watcher?.pid as number, 'SIGKILL')
    process.kill(victim.child.pid as number, 'SIGKILL')
    const killed = Date.now()
    const next = startRun(p.dir, 'quick')
    assert.equal(await next.exited, 0, next.output())
    writeFileSync(path.join(p.dir, 'go'), '')
    assert.equal(await live.exited, 0, live.output())
    assert.equal(readFileSync(live.mark, 'utf8'), 'done', 'the live run still reached its hosts in its namespaces')
    assert.doesNotMatch(next.output() + live.output(), /share loopback|removing orphaned namespace/)
    await assertNothingLeft(t, 'crashed run among live ones', victimRec.runId, victim.sleep, killed)
    for (const r of [live, next]) assert.deepEqual(recordsOf(r.child.pid as number), [], 'runs removed their records')
  })
}
