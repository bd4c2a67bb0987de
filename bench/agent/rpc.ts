// Agent benchmarks against a real local agent process, with a comparison peer measured in the same run:
//   no-op call round trip (p50, p99), calls/s with 1 and 64 in flight, exec('true') round trip,
//   100 MiB file put and get.
// Peers: a plain HTTP JSON endpoint on loopback (own process, keep-alive), a local fork+exec of `true` for
// exec, and `ssh localhost true` when sshd is installed.
// Goals: no-op p50 <= 150 us, >= 10,000 calls/s with 64 in flight, file transfer >= 200 MiB/s.
// Run: node --import tsx bench/agent/rpc.ts [--quick]
import { execFile, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { AgentClient } from '../../src/cluster/client.ts'
import { Host } from '../../src/cluster/host.ts'
import { spawnLocalAgent } from '../../src/cluster/localAgent.ts'

const quick = process.argv.includes('--quick')
const here = fileURLToPath(new URL('.', import.meta.url))
const N = quick ? 2000 : 10_000
const MIB = 1024 * 1024
const FILE_MIB = 100

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

async function latency(fn: () => Promise<unknown>, n: number): Promise<{ p50: number; p99: number; perSec: number }> {
  for (let i = 0; i < Math.min(1000, n / 5); i++) await fn() // warm up
  const lat = new Array<number>(n)
  const start = performance.now()
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await fn()
    lat[i] = performance.now() - t
  }
  const total = performance.now() - start
  lat.sort((a, b) => a - b)
  return { p50: pct(lat, 50) * 1000, p99: pct(lat, 99) * 1000, perSec: (n / total) * 1000 }
}

async function throughput(fn: () => Promise<unknown>, inFlight: number, total: number): Promise<number> {
  let next = 0
  const worker = async () => {
    while (next++ < total) await fn()
  }
  await Promise.all(Array.from({ length: inFlight }, worker)) // warm-up round
  next = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: inFlight }, worker))
  return (total / (performance.now() - start)) * 1000
}

async function startProcess(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const [line] = (await once(child.stdout, 'data')) as [Buffer]
  return { child, ready: JSON.parse(String(line).split('\n')[0]) }
}

const row = (name: string, vt: string, peer: string, goal = '') =>
  console.log(`${name.padEnd(34)} ${vt.padStart(16)} ${peer.padStart(22)}   ${goal}`)
const us = (x: number) => `${x.toFixed(0)} us`
const perSec = (x: number) => `${Math.round(x).toLocaleString('en-US')}/s`
const mibs = (bytes: number, ms: number) => `${(bytes / MIB / (ms / 1000)).toFixed(0)} MiB/s`

async function main() {
  const dir = mkdtempSync(join(os.tmpdir(), 'vt-bench-agent-'))
  const token = randomBytes(24).toString('hex')
  const agent = await spawnLocalAgent({
    token,
    stateDir: join(dir, 'state'),
    allowRoots: [dir],
    quiet: true,
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const peer = await startProcess([resolve(here, 'httpPeer.ts')], { VT_PEER_FILE: join(dir, 'peer.bin') })
  const client = await AgentClient.connect({ url: agent.url, token })
  const host = new Host(client, agent.url)
  const httpAgent = new Agent({ keepAlive: true, maxSockets: 64 })
  const port = peer.ready.port as number
  const httpCall = (path: string, method: string, body?: Buffer | string, sink?: (b: Buffer) => void) =>
    new Promise<number>((res, rej) => {
      const req = request(
        { host: '127.0.0.1', port, path, method, agent: httpAgent, headers: { 'content-type': 'application/json' } },
        r => {
          let n = 0
          r.on('data', (d: Buffer) => {
            n += d.length
            sink?.(d)
          })
          r.on('end', () => res(n))
        },
      )
      req.on('error', rej)
      req.end(body)
    })
  const httpPing = () => httpCall('/ping', 'POST', '1')

  try {
    console.log(
      `vt agent benchmark (${os.cpus()[0]?.model}, ${os.availableParallelism()} cores, node ${process.version})`,
    )
    row('measure', 'vt agent', 'peer', 'goal')
    row('-------', '--------', '----', '----')
    const ping = () => client.service('facts').ping(1)
    const vtLat = await latency(ping, N)
    const httpLat = await latency(httpPing, N)
    row('no-op round trip p50', us(vtLat.p50), `${us(httpLat.p50)} (http)`, '<= 150 us')
    row('no-op round trip p99', us(vtLat.p99), `${us(httpLat.p99)} (http)`)
    row('calls/s, 1 in flight', perSec(vtLat.perSec), `${perSec(httpLat.perSec)} (http)`)
    const vt64 = await throughput(ping, 64, N * 2)
    const http64 = await throughput(httpPing, 64, N * 2)
    row('calls/s, 64 in flight', perSec(vt64), `${perSec(http64)} (http)`, '>= 10,000/s')

    const execN = quick ? 100 : 300
    const vtExec = await latency(() => host.exec(['true']), execN)
    const run = promisify(execFile)
    const localExec = await latency(() => run('true'), execN)
    row('exec(true) round trip p50', us(vtExec.p50), `${us(localExec.p50)} (local spawn)`)
    row('exec(true) round trip p99', us(vtExec.p99), `${us(localExec.p99)} (local spawn)`)
    let sshd = false
    try {
      execFileSync('sh', ['-c', 'command -v sshd && ssh -o BatchMode=yes -o ConnectTimeout=2 localhost true'], {
        stdio: 'ignore',
      })
      sshd = true
    } catch {}
    if (sshd) {
      const ssh = await latency(() => run('ssh', ['-o', 'BatchMode=yes', 'localhost', 'true']), 20)
      row('exec(true) vs ssh localhost true', us(vtExec.p50), `${us(ssh.p50)} (ssh)`)
    } else row('ssh localhost true', '-', 'no sshd: not measured')

    // Median (and best) of 5 runs each: the machine is shared, single runs are noisy.
    const data = randomBytes(FILE_MIB * MIB)
    const path = join(dir, 'big.bin')
    const best: Record<string, number> = {}
    let label = ''
    const median = async (fn: () => Promise<unknown>) => {
      const times: number[] = []
      for (let i = 0; i < 5; i++) {
        const t = performance.now()
        await fn()
        times.push(performance.now() - t)
      }
      times.sort((a, b) => a - b)
      best[label] = times[0]
      return times[2]
    }
    label = 'put'
    const putMs = await median(() => host.files.put(path, data))
    label = 'get'
    const getMs = await median(async () => {
      const back = await host.files.get(path)
      if (back.length !== data.length) throw new Error('file get returned a different size')
    })
    if (!(await host.files.get(path)).equals(data)) throw new Error('file get returned different bytes')
    label = 'httpPut'
    const httpPutMs = await median(() => httpCall('/file', 'PUT', data))
    label = 'httpGet'
    const httpGetMs = await median(async () => {
      // Collected into one Buffer, as host.files.get() does.
      const parts: Buffer[] = []
      await httpCall('/file', 'GET', undefined, d => parts.push(d))
      const got = Buffer.concat(parts)
      if (got.length !== data.length) throw new Error(`http peer returned ${got.length} bytes`)
    })
    row(
      `${FILE_MIB} MiB file put, median of 5`,
      mibs(data.length, putMs),
      `${mibs(data.length, httpPutMs)} (http)`,
      '>= 200 MiB/s',
    )
    row(`${FILE_MIB} MiB file put, best of 5`, mibs(data.length, best.put), `${mibs(data.length, best.httpPut)} (http)`)
    row(
      `${FILE_MIB} MiB file get, median of 5`,
      mibs(data.length, getMs),
      `${mibs(data.length, httpGetMs)} (http)`,
      '>= 200 MiB/s',
    )
    row(`${FILE_MIB} MiB file get, best of 5`, mibs(data.length, best.get), `${mibs(data.length, best.httpGet)} (http)`)
    console.log(
      `load average during the run: ${os
        .loadavg()
        .map(l => l.toFixed(1))
        .join(' ')}`,
    )
  } finally {
    await client.close()
    httpAgent.destroy()
    agent.child.stdin?.end()
    peer.child.stdin.end()
    await Promise.all([once(agent.child, 'exit'), once(peer.child, 'exit')])
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
