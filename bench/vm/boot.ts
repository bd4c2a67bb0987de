// bench/vm: boot to exec-ready (median of N), exec('true') round trip p50/p99, and 8 VMs booted at once on one
// host, each next to its peer measured in the same run: a raw qemu-system-x86_64 boot of the same kernel and
// initramfs with the same devices, timed from spawn to the guest's "vt-tiny: ready" line on the serial port.
// With --debian N (default 1, 0 skips): the debian guest's boot to qemu-guest-agent ready and exec('true')
// through the agent, next to the tiny guest's numbers of the same run.
//   node --import tsx bench/vm/boot.ts [--runs 10] [--execs 300] [--concurrent 8] [--debian 1]
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ensureImage } from '../../agent/image/index.ts'
import { AgentClient } from '../../src/cluster/client.ts'
import { Host } from '../../src/cluster/host.ts'
import { spawnLocalAgent } from '../../src/cluster/localAgent.ts'
import { Vm } from '../../src/vm/index.ts'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    execs: { type: 'string', default: '300' },
    concurrent: { type: 'string', default: '8' },
    debian: { type: 'string', default: '1' },
  },
})
const RUNS = Number(values.runs)
const EXECS = Number(values.execs)
const CONCURRENT = Number(values.concurrent)
const DEBIAN = Number(values.debian)

const root = mkdtempSync(join(tmpdir(), 'vt-bench-vm-'))
const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
  rmSync(root, { recursive: true, force: true })
})

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}
const median = (xs: number[]) => quantile(xs, 0.5)
const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`

const image = await ensureImage('tiny', { progress: m => console.log(`image: ${m}`) })
const APPEND = `${image.append} panic=-1`

/**
 * The peer: QEMU with the same kernel, initramfs, machine, devices and serial chardev (a unix socket, as vt
 * uses), no vt in the loop; timed from spawn to the guest's "vt-tiny: ready" line on the serial port.
 */
let rawN = 0
async function rawBoot(): Promise<number> {
  const dir = join(root, `raw${rawN++}`)
  mkdirSync(dir, { recursive: true })
  const sock = (n: string) => join(dir, `${n}.sock`)
  const args = [
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-machine',
    'q35',
    '-accel',
    'tcg',
    '-smp',
    '1',
    '-m',
    '256M',
    '-no-reboot',
    '-kernel',
    image.kernel,
    '-initrd',
    image.initrd,
    '-append',
    APPEND,
    '-chardev',
    `socket,id=con,path=${sock('console')},server=on,wait=off`,
    '-serial',
    'chardev:con',
    '-device',
    'virtio-serial-pci,id=vtser',
    '-chardev',
    `socket,id=p0,path=${sock('cmd')},server=on,wait=off`,
    '-device',
    'virtserialport,bus=vtser.0,chardev=p0,name=vt.cmd',
    '-chardev',
    `socket,id=p1,path=${sock('ctl')},server=on,wait=off`,
    '-device',
    'virtserialport,bus=vtser.0,chardev=p1,name=vt.ctl',
    '-chardev',
    `socket,id=p2,path=${sock('qga')},server=on,wait=off`,
    '-device',
    'virtserialport,bus=vtser.0,chardev=p2,name=org.qemu.guest_agent.0',
  ]
  const t0 = performance.now()
  const p = spawn('qemu-system-x86_64', args, { stdio: 'ignore' })
  children.add(p)
  p.once('exit', () => children.delete(p))
  let con: net.Socket | undefined
  while (!con) {
    con = await new Promise<net.Socket | undefined>(resolve => {
      const s = net.createConnection({ path: sock('console') })
      s.once('connect', () => resolve(s))
      s.once('error', () => resolve(undefined))
    })
    if (!con) await new Promise(r => setTimeout(r, 10))
  }
  const ready = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`raw boot not ready in 60 s: ${out.slice(-300)}`)), 60_000)
    con?.on('data', d => {
      out += d
      if (out.includes('vt-tiny: ready')) {
        clearTimeout(timer)
        resolve(performance.now() - t0)
      }
    })
  })
  con.destroy()
  p.kill('SIGKILL')
  return ready
}

async function startAgent(): Promise<{ url: string; token: string }> {
  const token = 'bench-token-0123456789abcdef'
  const { child: p, url } = await spawnLocalAgent({
    token,
    stateDir: join(root, 'state'),
    name: 'bench',
    quiet: true,
    exitWithStdin: false,
    stdio: ['ignore', 'pipe', 'inherit'],
    onSpawn: c => children.add(c),
  })
  return { url, token }
}

const agent = await startAgent()
const client = await AgentClient.connect({ url: agent.url, token: agent.token, name: 'bench', leaseSeconds: 30 })
const host = new Host(client, agent.url)
let vmN = 0
const spec = () => ({ name: `b${vmN++}`, accel: 'tcg' as const, memory: '256M' })

// Warm-up (page cache, image check).
await rawBoot()
await (await Vm.create(host, spec())).destroy()

console.log(`\nboot to exec-ready, ${RUNS} runs each, interleaved (TCG, 1 vCPU, 256 MiB)`)
const raw: number[] = []
const vtCreate: number[] = []
const vtReady: number[] = []
for (let i = 0; i < RUNS; i++) {
  raw.push(await rawBoot())
  const t0 = performance.now()
  const vm = await Vm.create(host, spec())
  vtCreate.push(performance.now() - t0)
  vtReady.push(vm.info.readyMs ?? Number.NaN)
  await vm.destroy()
}
console.log(`  raw qemu (spawn → "vt-tiny: ready" on serial)   median ${ms(median(raw))}  min ${ms(Math.min(...raw))}`)
console.log(
  `  vt Vm.create() through the agent (to channel)   median ${ms(median(vtCreate))}  min ${ms(Math.min(...vtCreate))}`,
)
console.log(`    of which agent spawn → ready                  median ${ms(median(vtReady))}`)
console.log(`  difference of medians: ${ms(median(vtCreate) - median(raw))} (goal ≤ 500 ms)`)

console.log(`\nexec('true') round trip, ${EXECS} calls`)
const vm = await Vm.create(host, spec())
const rt: number[] = []
const guest: number[] = []
for (let i = 0; i < EXECS; i++) {
  const t0 = performance.now()
  const r = await vm.exec('true')
  rt.push(performance.now() - t0)
  guest.push(r.durationMs)
}
const ping: number[] = []
for (let i = 0; i < 100; i++) {
  const t0 = performance.now()
  await host.service('facts').ping()
  ping.push(performance.now() - t0)
}
console.log(`  vm.exec('true') via agent      p50 ${ms(median(rt))}  p99 ${ms(quantile(rt, 0.99))} (goal p50 ≤ 5 ms)`)
console.log(`    agent ↔ guest part           p50 ${ms(median(guest))}  p99 ${ms(quantile(guest, 0.99))}`)
console.log(`  peer: agent facts.ping         p50 ${ms(median(ping))}  p99 ${ms(quantile(ping, 0.99))}`)
await vm.destroy()

console.log(`\n${CONCURRENT} VMs booted at once on one host`)
let t0 = performance.now()
await Promise.all(Array.from({ length: CONCURRENT }, () => rawBoot()))
const rawAll = performance.now() - t0
t0 = performance.now()
const vms = await Promise.all(Array.from({ length: CONCURRENT }, () => Vm.create(host, spec())))
const vtAll = performance.now() - t0
const outs = await Promise.all(vms.map(v => v.succeed('cat /proc/sys/kernel/hostname')))
if (outs.some((o, i) => o.trim() !== vms[i].name)) throw new Error(`wrong hostnames: ${outs}`)
await Promise.all(vms.map(v => v.destroy()))
console.log(`  raw qemu, all ready            ${ms(rawAll)}`)
console.log(`  vt, all ready for exec         ${ms(vtAll)}`)

if (DEBIAN > 0) {
  await ensureImage('debian', { progress: m => console.log(`image: ${m}`) })
  console.log(`\ndebian guest (systemd + qemu-guest-agent, TCG, 1 vCPU, 512 MiB), ${DEBIAN} boot(s)`)
  const ready: number[] = []
  const execs: number[] = []
  for (let i = 0; i < DEBIAN; i++) {
    const vm = await Vm.create(host, { name: `d${i}`, image: 'debian', accel: 'tcg', memory: '512M' })
    ready.push(vm.info.readyMs ?? Number.NaN)
    for (let j = 0; j < 30; j++) {
      const t0 = performance.now()
      await vm.exec('true')
      execs.push(performance.now() - t0)
    }
    await vm.destroy()
  }
  console.log(`  debian: agent spawn → qemu-guest-agent ready  median ${ms(median(ready))}`)
  console.log(`  peer: tiny, agent spawn → channel ready        median ${ms(median(vtReady))}`)
  console.log(
    `  debian: vm.exec('true') via qemu-guest-agent   p50 ${ms(median(execs))}  p99 ${ms(quantile(execs, 0.99))}`,
  )
  console.log(`  peer: tiny vm.exec('true')                     p50 ${ms(median(rt))}`)
}

await client.close()
process.exit(0)
