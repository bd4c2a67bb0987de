// Guest networks: vt's network (cluster.createNetwork + nics: [{ network }]) against the overlay a user writes
// by hand with ip commands (bridge, VXLAN with one FDB entry per peer, a tap per VM on every host it may
// visit, MACs by hand, MTU 1400 in the guest), both in the same run on the same embedded two-host cluster
// (network namespaces). For each: ping round trip and TCP throughput VM to VM across hosts and on one host,
// then the traffic lost by a 10 ms ping across one migration of a busy server (most replies missing in a row
// × the client's cadence) and the longest time without a reply, whether a TCP stream (nc) survives it and its
// longest stall, how long the guest stood still (source STOP to destination RESUME), and whether the server
// still answers afterwards.
// The guest's pause is split where the time goes (QMP event timestamps of both QEMUs, one clock): the source's
// STOP to its 'completed' (QEMU's downtime: its last pass written into the socket), to the destination's
// 'completed' or its own RESUME (loading what was still in flight: the bytes queued in the sockets at the
// source's STOP are printed too), to the destination's RESUME (vt's round trip, if any).
//   npm run bench:network [-- --pings N] [--hand-first] [--max-bandwidth MiB] [--downtime-limit ms]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { Cluster } from '../../src/cluster/cluster.ts'
import { startCluster } from '../../src/cluster/embedded.ts'
import type { Host } from '../../src/cluster/host.ts'
import type { Network } from '../../src/cluster/network.ts'
import type { NicSpec, VmSpec } from '../../src/protocol/vm.ts'
import { Vm } from '../../src/vm/index.ts'

const argPings = process.argv.indexOf('--pings')
const PINGS = argPings > 0 ? Number(process.argv[argPings + 1]) : 20
const MIB_SENT = 16
const MiB = 1024 * 1024
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
/** The same parameters for both sides. */
const PARAMS = {
  'max-bandwidth': arg('--max-bandwidth', 4096) * MiB,
  'downtime-limit': arg('--downtime-limit', 300),
}

/** Samples the largest receive and send queue of this host's TCP sockets every 5 ms (the migration stream's). */
const SAMPLER = `const fs=require('fs');const out=fs.openSync(process.argv[1],'w');const end=Date.now()+Number(process.argv[2]);
const tick=()=>{let rx=0,tx=0;for(const l of fs.readFileSync('/proc/net/tcp','utf8').split('\\n').slice(1)){const f=l.trim().split(/\\s+/);if(f.length<5)continue;const [t,r]=f[4].split(':');tx=Math.max(tx,parseInt(t,16));rx=Math.max(rx,parseInt(r,16))}
fs.writeSync(out,Date.now()+' '+rx+' '+tx+'\\n');if(Date.now()<end)setTimeout(tick,5)};tick()`

interface Side {
  name: string
  nic(vm: string, host: 'a' | 'b'): Promise<NicSpec>
}

interface Row {
  side: string
  rttCross: number
  rttLocal: number
  mbpsCross: number
  mbpsLocal: number
  /** The most replies missing in a row × the client's cadence: the traffic lost. */
  lostMs: number
  /** The most replies missing in a row, and the client's median time per ping (10 ms on an idle machine). */
  lostInRow: number
  cadenceMs: number
  /**
   * The longest time without a reply (the client's uptime stamps, 10 ms resolution): also replies that came
   * late, from the guest catching up after its pause or the client's own QEMU starved of CPU meanwhile.
   */
  replyGapMs: number
  lostPings: number
  tcpSurvived: boolean
  /** Longest time the TCP client received nothing (its lines are stamped with the guest's uptime, 10 ms ticks). */
  tcpStallMs: number
  downtimeMs: number
  /** The guest stood still: the source's STOP to the destination's RESUME (QMP event timestamps, one clock). */
  pauseMs: number
  /** The pause split: STOP → source completed → destination completed (loaded) → destination RESUME. */
  stopToSentMs: number
  sentToLoadedMs: number
  loadedToResumeMs: number
  /** Bytes in the destination's socket (receive queue) and the source's (send queue) at the source's STOP. */
  inFlightBytes: number
  /** The server still answers after the migration (a crashed guest makes the other numbers meaningless). */
  serverAlive: boolean
}

/** The overlay as the user wrote it: ~10 ip commands per host plus a tap per VM per host. */
function handScript(self: string, peer: string, taps: string[]): string {
  return [
    'set -e',
    'ip link add hbr0 type bridge',
    `ip link add hvx0 type vxlan id 4242 dstport 4789 local ${self} dev eth0`,
    'ip link set hvx0 master hbr0 up',
    `bridge fdb append 00:00:00:00:00:00 dev hvx0 dst ${peer}`,
    'ip link set hbr0 up',
    ...taps.flatMap(t => [`ip tuntap add dev ${t} mode tap`, `ip link set ${t} master hbr0 up`]),
  ].join('\n')
}

const rtt = (out: string) => Number(/round-trip min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(out)?.[1] ?? Number.NaN)

async function throughput(server: Vm, client: Vm, ip: string): Promise<number> {
  await server.succeed('(nc -l -p 5001 > /dev/null) >/dev/null 2>&1 &')
  await server.waitUntilSucceeds('netstat -ltn | grep -q :5001')
  const out = await client.succeed(
    `s=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero bs=64k count=${MIB_SENT * 16} 2>/dev/null | nc ${ip} 5001; e=$(cut -d' ' -f1 /proc/uptime); echo $s $e`,
    { timeout: 120_000 },
  )
  const [s, e] = out.trim().split(' ').map(Number)
  return Math.round(((MIB_SENT * MiB * 8) / 1e6 / Math.max(e - s, 0.01)) * 10) / 10
}

async function measure(cluster: Cluster, side: Side): Promise<Row> {
  const [a, b] = cluster.hosts
  const make = async (name: string, host: Host, at: 'a' | 'b') => {
    const spec: VmSpec = { name, image: 'tiny', memory: 128, nics: [await side.nic(name, at)] }
    const vm = await Vm.create(host, spec)
    vm.clusterHosts = cluster.hosts
    vm.networks = cluster
    return vm
  }
  const [server, remote, local] = await Promise.all([
    make(`${side.name}-srv`, a, 'a'),
    make(`${side.name}-far`, b, 'b'),
    make(`${side.name}-near`, a, 'a'),
  ])
  try {
    const ip = (await server.succeed("ip -4 -o addr show dev eth0 | awk '{print $4}'")).trim().split('/')[0]
    await remote.succeed(`ping -c 3 -W 5 ${ip}`)
    await local.succeed(`ping -c 3 -W 5 ${ip}`)
    const rttCross = rtt(await remote.succeed(`ping -q -c ${PINGS} -i 0.05 ${ip}`))
    const rttLocal = rtt(await local.succeed(`ping -q -c ${PINGS} -i 0.05 ${ip}`))
    const mbpsCross = await throughput(server, remote, ip)
    const mbpsLocal = await throughput(server, local, ip)
    // Across a migration: a busy server (rewriting 16 MiB of tmpfs every ~50 ms), a 10 ms ping and a TCP
    // counter stream from the remote client.
    await server.succeed(
      '(while :; do dd if=/dev/zero of=/tmp/busy bs=1M count=16 2>/dev/null; usleep 50000; done) >/dev/null 2>&1 &',
    )
    await server.succeed('(i=0; while :; do i=$((i+1)); echo $i; usleep 20000; done | nc -l -p 5000) >/dev/null 2>&1 &')
    await server.waitUntilSucceeds('netstat -ltn | grep -q :5000')
    await remote.succeed(
      `(sleep 100000 | nc ${ip} 5000 | while read l; do echo "$(cut -d' ' -f1 /proc/uptime) $l"; done > /tmp/stream; echo $? > /tmp/nc.exit) >/dev/null 2>&1 &`,
    )
    // Each reply stamped with the client's uptime (builtin read: no fork per line): a loaded TCG guest sends its
    // "10 ms" pings further apart, so the gap is measured in time, not only in sequence numbers.
    await remote.succeed(
      `(ping -i 0.01 -c 1500 ${ip} | while read l; do read up _ < /proc/uptime; echo "$up $l"; done > /tmp/ping.txt) >/dev/null 2>&1 &`,
    )
    const queues = [a, b].map(h => join(out, `queues-${side.name}-${h.name}.txt`))
    const samplers = await Promise.all(
      [a, b].map((h, i) => h.spawn([process.execPath, '-e', SAMPLER, queues[i], '60000'])),
    )
    await new Promise(r => setTimeout(r, 3000))
    const stamps: Record<string, number> = {}
    const offs = [a, b].map(h =>
      h.on('vm', 'qmp', e => {
        if (e.name !== server.name) return
        const key =
          e.event === 'MIGRATION' ? `${h.name}:${(e.data as { status?: string }).status}` : `${h.name}:${e.event}`
        stamps[key] ??= e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000
      }),
    )
    const result = await server.migrate({ to: b, parameters: PARAMS })
    for (const off of offs) off()
    await Promise.all(samplers.map(p => p.kill().catch(() => false)))
    const stop = stamps[`${a.name}:STOP`]
    const at = (file: string) => {
      const rows = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map(l => l.split(' ').map(Number))
      return rows.find(r => r[0] >= stop) ?? rows[rows.length - 1] ?? [0, 0, 0]
    }
    const inFlightBytes = at(queues[1])[1] + at(queues[0])[2]
    const loaded = Math.min(stamps[`${b.name}:completed`], stamps[`${b.name}:RESUME`])
    const serverAlive = (await server.exec('true', { timeout: 15_000 }).catch(() => ({ exitCode: 1 }))).exitCode === 0
    await remote.waitUntilSucceeds('grep -q "packets transmitted" /tmp/ping.txt', { timeout: 120_000 })
    const pings = await remote.succeed('cat /tmp/ping.txt')
    const replies = [...pings.matchAll(/^([\d.]+) .*seq=(\d+)/gm)].map(m => ({ t: Number(m[1]), seq: Number(m[2]) }))
    let gap = 0
    let gapMs = 0
    const spacing: number[] = []
    for (let i = 1; i < replies.length; i++) {
      gap = Math.max(gap, replies[i].seq - replies[i - 1].seq - 1)
      const ms = Math.round((replies[i].t - replies[i - 1].t) * 1000)
      gapMs = Math.max(gapMs, ms)
      spacing.push(ms / (replies[i].seq - replies[i - 1].seq))
    }
    // The client's own cadence (median time per sequence number): the lost time is the gap beyond it.
    const cadenceMs = Math.round(spacing.sort((x, y) => x - y)[spacing.length >> 1] ?? 10)
    const stats = /(\d+) packets transmitted, (\d+) packets received/.exec(pings)
    const tcpSurvived = (await remote.exec('test -e /tmp/nc.exit')).exitCode !== 0
    const times = [...(await remote.succeed('cat /tmp/stream')).matchAll(/^([\d.]+) \d+$/gm)].map(m => Number(m[1]))
    let stall = 0
    for (let i = 1; i < times.length; i++) stall = Math.max(stall, times[i] - times[i - 1])
    return {
      side: side.name,
      rttCross,
      rttLocal,
      mbpsCross,
      mbpsLocal,
      lostMs: gap * cadenceMs,
      replyGapMs: gapMs,
      lostInRow: gap,
      cadenceMs,
      lostPings: stats ? Number(stats[1]) - Number(stats[2]) : Number.NaN,
      tcpSurvived,
      tcpStallMs: Math.round(stall * 1000),
      downtimeMs: result.downtimeMs,
      pauseMs: Math.round((stamps[`${b.name}:RESUME`] ?? Number.NaN) - (stop ?? Number.NaN)),
      stopToSentMs: Math.round((stamps[`${a.name}:completed`] ?? Number.NaN) - stop),
      // Loaded: the destination's 'completed' or, resuming itself, its RESUME (QEMU 7.2 starts the guest first).
      sentToLoadedMs: Math.round(loaded - stamps[`${a.name}:completed`]),
      loadedToResumeMs: Math.round(stamps[`${b.name}:RESUME`] - loaded),
      inFlightBytes,
      serverAlive,
    }
  } finally {
    await Promise.all([server, remote, local].map(v => v.destroy().catch(() => {})))
  }
}

const loadAtStart = os.loadavg()[0]
const out = mkdtempSync(join(os.tmpdir(), 'vt-bench-network-'))
const started = await startCluster(
  { hosts: 2, isolation: 'netns' },
  { project: { name: 'bench-network', outputDir: out } as never, config: {} as never },
)
const cluster = await Cluster.connect(started.info)
try {
  const [a, b] = cluster.hosts
  const lan: Network = await cluster.createNetwork('lan', { subnet: '10.90.0.0/24' })
  const vt: Side = { name: 'vt', nic: name => lan.nicFor(name, { network: 'lan' }) }
  // Hand-written: fixed taps on both hosts (a VM may visit either), MACs and addresses by hand.
  const taps = { 'hand-srv': 'hs', 'hand-far': 'hf', 'hand-near': 'hn' } as Record<string, string>
  const addr = { 'hand-srv': 10, 'hand-far': 11, 'hand-near': 12 } as Record<string, number>
  for (const [h, peer] of [
    [a, b],
    [b, a],
  ] as const)
    await h.succeed(['sh', '-c', handScript(h.address, peer.address, Object.values(taps))])
  const hand: Side = {
    name: 'hand',
    nic: async name => ({
      mode: 'tap',
      ifname: taps[name],
      mac: `52:54:00:99:00:${addr[name].toString(16).padStart(2, '0')}`,
      ip: `10.91.0.${addr[name]}/24`,
      mtu: 1400,
    }),
  }
  const rows: Row[] = []
  // --hand-first: measure the peer first (the machine's load changes during a run).
  const order = process.argv.includes('--hand-first') ? [hand, vt] : [vt, hand]
  for (const side of order) rows.push(await measure(cluster, side))
  console.log(
    `guest networks, 128 MiB TCG guests, embedded 2-host cluster (netns), ${PINGS} pings per RTT, migration parameters ${JSON.stringify(PARAMS)}, load average ${loadAtStart.toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end`,
  )
  console.log(
    'side | RTT cross-host | RTT same host | TCP cross-host | TCP same host | lost across migration | longest reply gap | TCP stream (longest stall) | downtime | guest paused | server after',
  )
  for (const r of rows) {
    console.log(
      `${r.side.padEnd(4)} | ${r.rttCross.toFixed(2).padStart(9)} ms | ${r.rttLocal.toFixed(2).padStart(8)} ms | ${String(r.mbpsCross).padStart(8)} Mb/s | ${String(r.mbpsLocal).padStart(7)} Mb/s | ${String(r.lostMs).padStart(4)} ms (${r.lostInRow} in a row, ${r.cadenceMs} ms apart; ${r.lostPings} in all) | ${r.replyGapMs} ms | ${r.tcpSurvived ? 'kept' : 'RESET'} (${r.tcpStallMs} ms) | ${r.downtimeMs} ms | ${r.pauseMs} ms | ${r.serverAlive ? 'alive' : 'CRASHED'}`,
    )
  }
  console.log('side | guest paused = STOP→sent (QEMU downtime) + sent→loaded (in flight at STOP) + loaded→RESUME')
  for (const r of rows) {
    console.log(
      `${r.side.padEnd(4)} | ${r.pauseMs} ms = ${r.stopToSentMs} + ${r.sentToLoadedMs} (${(r.inFlightBytes / MiB).toFixed(1)} MiB) + ${r.loadedToResumeMs} ms`,
    )
  }
  for (const h of [a, b])
    await h.exec(['sh', '-c', 'ip link del hvx0; ip link del hbr0; for t in hs hf hn; do ip link del $t; done'])
} finally {
  await cluster.close()
  await started.stop()
  rmSync(out, { recursive: true, force: true })
}
