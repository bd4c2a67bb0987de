// bench/sync: barrier release latency with 2, 16 and 64 parties, next to its peer measured in the same run.
//   spec code: parties in two worker-like child processes, through vt's IPC to the sync server in this process
//   peer:      the same parties, Autotest-style: one TCP connection per party to a rendezvous server here
//   guest:     one party is `vt-sync barrier` in a tiny TCG guest (command channel → agent → controller), the
//              rest spec code; time per barrier over a loop run inside the guest
// A round is timed from "go" to the last party released. Numbers depend on load; run on a quiet machine.
//   node --import tsx bench/sync/barrier.ts [--rounds 30] [--guest-rounds 10] [--no-guest]
import { type ChildProcess, fork } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { AgentClient } from '../../src/cluster/client.ts'
import { Cluster } from '../../src/cluster/cluster.ts'
import { Host } from '../../src/cluster/host.ts'
import { spawnLocalAgent } from '../../src/cluster/localAgent.ts'
import { SyncServer } from '../../src/sync/server.ts'
import { LocalTransport, type SyncToMain, serveWorker, setSyncTransport } from '../../src/sync/transport.ts'
import { Vm } from '../../src/vm/index.ts'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '30' },
    'guest-rounds': { type: 'string', default: '10' },
    'no-guest': { type: 'boolean', default: false },
  },
})
const ROUNDS = Number(values.rounds)
const GUEST_ROUNDS = Number(values['guest-rounds'])
const SIZES = [2, 16, 64]

const root = mkdtempSync(join(tmpdir(), 'vt-bench-sync-'))
const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
  rmSync(root, { recursive: true, force: true })
})

const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]
const ms = (x: number) => `${x.toFixed(2)} ms`

// ---------- the Autotest-style peer: one TCP connection per party, release when N arrived ----------
const waiting = new Map<string, net.Socket[]>()
const rendezvous = net.createServer(sock => {
  sock.setNoDelay(true)
  let buf = ''
  sock.on('data', d => {
    buf += d
    const nl = buf.indexOf('\n')
    if (nl < 0) return
    const [name, n] = buf.slice(0, nl).split(' ')
    const list = waiting.get(name) ?? []
    list.push(sock)
    waiting.set(name, list)
    if (list.length < Number(n)) return
    waiting.delete(name)
    for (const s of list) s.end('go\n')
  })
  sock.on('error', () => {})
})
await new Promise<void>(r => rendezvous.listen(0, '127.0.0.1', () => r()))
const port = (rendezvous.address() as net.AddressInfo).port

// ---------- two worker-like processes talking to this process's sync server over IPC ----------
const server = new SyncServer()
const party = fileURLToPath(new URL('./party.ts', import.meta.url))
const workers = await Promise.all(
  [0, 1].map(
    i =>
      new Promise<ChildProcess>(resolve => {
        const c = fork(party, [], { execArgv: ['--import', 'tsx'], serialization: 'json' })
        children.add(c)
        c.on('message', (m: SyncToMain | { type: string }) => {
          if (m.type === 'sync' || m.type === 'syncCancel')
            serveWorker(server, `w${i}`, m as SyncToMain, r => c.send(r))
          if (m.type === 'ready') resolve(c)
        })
      }),
  ),
)

let roundN = 0
async function round(total: number, mode: 'ipc' | 'tcp'): Promise<number> {
  const id = `${mode}-${total}-${roundN++}`
  const t0 = performance.now()
  await Promise.all(
    workers.map(
      (w, i) =>
        new Promise<void>(resolve => {
          const onMessage = (m: { type: string; id?: string }) => {
            if (m.type !== 'done' || m.id !== id) return
            w.off('message', onMessage)
            resolve()
          }
          w.on('message', onMessage)
          const parties = i === 0 ? Math.ceil(total / 2) : Math.floor(total / 2)
          w.send({ type: 'round', id, parties, total, mode, port })
        }),
    ),
  )
  return performance.now() - t0
}

console.log(`barrier release latency, ${ROUNDS} rounds each (p50 / p95), parties split over 2 worker processes`)
console.log('parties  vt sync server (IPC)      Autotest-style TCP rendezvous')
for (const n of SIZES) {
  for (let i = 0; i < 3; i++) await Promise.all([round(n, 'ipc'), round(n, 'tcp')]) // warm-up
  const ipc: number[] = []
  const tcp: number[] = []
  // Interleaved so that load changes hit both alike.
  for (let i = 0; i < ROUNDS; i++) {
    ipc.push(await round(n, 'ipc'))
    tcp.push(await round(n, 'tcp'))
  }
  console.log(
    `${String(n).padStart(7)}  ${`${ms(quantile(ipc, 0.5))} / ${ms(quantile(ipc, 0.95))}`.padEnd(26)}${ms(quantile(tcp, 0.5))} / ${ms(quantile(tcp, 0.95))}`,
  )
}
for (const w of workers) w.send({ type: 'exit' })
rendezvous.close()

// ---------- a guest party: vt-sync in a tiny TCG VM, the rest spec code in this process ----------
if (!values['no-guest']) {
  const transport = new LocalTransport(new SyncServer())
  setSyncTransport(transport)
  const token = 'bench-token-0123456789abcdef'
  const { url } = await spawnLocalAgent({
    token,
    stateDir: join(root, 'state'),
    name: 'bench',
    quiet: true,
    exitWithStdin: false,
    stdio: ['ignore', 'pipe', 'inherit'],
    onSpawn: c => children.add(c),
  })
  const client = await AgentClient.connect({ url, token, name: 'bench', leaseSeconds: 30 })
  const cluster = new Cluster([new Host(client, url)])
  const vm = await Vm.create(cluster.hosts[0], { name: 'g', accel: 'tcg', memory: '128M' })
  console.log(`\nwith a guest party (vt-sync in a TCG guest + spec code), ${GUEST_ROUNDS} barriers each`)
  console.log('parties  per barrier (guest loop)   guest `true` exec round trip (floor)')
  const floor: number[] = []
  for (let i = 0; i < 5; i++) {
    const t = performance.now()
    await vm.exec('true')
    floor.push(performance.now() - t)
  }
  for (const n of SIZES) {
    const t0 = performance.now()
    const guest = vm.exec(
      `i=0; while [ $i -lt ${GUEST_ROUNDS} ]; do vt-sync barrier g${n}-$i ${n} --timeout 120 || exit 1; i=$((i+1)); done`,
      { timeout: 600_000 },
    )
    for (let i = 0; i < GUEST_ROUNDS; i++) {
      await Promise.all(
        Array.from({ length: n - 1 }, async () => {
          const { reply } = transport.request(
            { kind: 'spec', label: 'bench' },
            { op: 'barrier', name: `g${n}-${i}`, parties: n },
          )
          const r = await reply
          if (!r.ok) throw new Error(r.message)
        }),
      )
    }
    const r = await guest
    if (r.exitCode !== 0) throw new Error(`guest loop failed: ${r.stderr}`)
    console.log(
      `${String(n).padStart(7)}  ${ms((performance.now() - t0) / GUEST_ROUNDS).padEnd(29)}${ms(quantile(floor, 0.5))}`,
    )
  }
  await vm.destroy()
  await cluster.close()
}
process.exit(0)
