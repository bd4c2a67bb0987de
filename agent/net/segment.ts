// One host's part of a guest network: a bridge and a VXLAN device with a flooding entry per peer. Learning
// stays on, so after a migration the VM's gratuitous announcement teaches every bridge its new port.
import { writeFileSync } from 'node:fs'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import { bridgeName, type NetworkInfo, VXLAN_OVERHEAD, vxlanName } from '../../src/protocol/network.ts'
import { ipCmd, linkExists, routeDevice, tool } from './cmd.ts'

export interface SegmentOptions {
  vni: number
  peers: string[]
  local?: string
  device?: string
  port?: number
}

async function linkMtu(dev: string): Promise<number> {
  const [l] = JSON.parse(await ipCmd('-j', 'link', 'show', 'dev', dev)) as { mtu: number }[]
  return l.mtu
}

async function firstGlobalAddress(): Promise<{ dev: string; src: string } | undefined> {
  const links = JSON.parse(await ipCmd('-j', '-4', 'addr', 'show', 'scope', 'global')) as {
    ifname: string
    addr_info: { local: string }[]
  }[]
  const l = links.find(x => x.addr_info.length > 0)
  return l ? { dev: l.ifname, src: l.addr_info[0].local } : undefined
}

/** Creates the bridge and VXLAN device; on failure removes what it made. */
export async function createSegment(o: SegmentOptions): Promise<NetworkInfo> {
  const bridge = bridgeName(o.vni)
  const vxlan = vxlanName(o.vni)
  if ((await linkExists(bridge)) || (await linkExists(vxlan))) {
    throw new VtError(
      ErrorNames.badRequest,
      `network VNI ${o.vni} already exists on this host (${bridge}): another session or run uses it; pick another VNI`,
      { code: 'EXISTS' },
    )
  }
  let device = o.device
  let local = o.local
  if (o.peers.length > 0 && (!device || !local)) {
    const r = await routeDevice(o.peers[0])
    device ??= r.dev
    local ??= r.src
  } else if (!device || !local) {
    const g = await firstGlobalAddress()
    device ??= g?.dev
    local ??= g?.src
  }
  if (!device) throw new VtError(ErrorNames.badRequest, 'no underlay interface for the network: give `device`')
  const mtu = (await linkMtu(device)) - VXLAN_OVERHEAD
  try {
    await ipCmd('link', 'add', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0')
    await ipCmd('link', 'set', bridge, 'mtu', String(mtu))
    // Answer ARP on the bridge only for addresses on the bridge: a host attached to two networks (or with
    // addresses elsewhere) must not make them look like one segment.
    writeFileSync(`/proc/sys/net/ipv4/conf/${bridge}/arp_ignore`, '1')
    const vx = ['link', 'add', vxlan, 'type', 'vxlan', 'id', String(o.vni), 'dstport', String(o.port ?? 4789)]
    if (local) vx.push('local', local)
    vx.push('dev', device)
    await ipCmd(...vx)
    await ipCmd('link', 'set', vxlan, 'mtu', String(mtu), 'master', bridge)
    for (const peer of o.peers) {
      await tool('bridge', ['fdb', 'append', '00:00:00:00:00:00', 'dev', vxlan, 'dst', peer])
    }
    await ipCmd('link', 'set', vxlan, 'up')
    await ipCmd('link', 'set', bridge, 'up')
  } catch (e) {
    await destroySegment(o.vni)
    throw e
  }
  return { vni: o.vni, bridge, vxlan, mtu, local, device }
}

export async function destroySegment(vni: number): Promise<void> {
  await ipCmd('link', 'del', vxlanName(vni)).catch(() => {})
  await ipCmd('link', 'del', bridgeName(vni)).catch(() => {})
}

/** An address for this host's own processes, on the bridge. */
export async function attachHost(vni: number, ip: string): Promise<{ mac: string; ip: string }> {
  const bridge = bridgeName(vni)
  await ipCmd('addr', 'replace', ip, 'dev', bridge)
  const [l] = JSON.parse(await ipCmd('-j', 'link', 'show', 'dev', bridge)) as { address: string }[]
  return { mac: l.address, ip }
}
