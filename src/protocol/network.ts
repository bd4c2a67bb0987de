// The `network` service: this host's part of a guest network, i.e. one L2 segment over every host of a
// cluster: a bridge here, a VXLAN device to the other hosts over the underlay, a tap per NIC (made by the
// `vm` service for NICs with mode 'bridge'). Everything is recorded with the session and reaped with it.
// Names derive from the VNI (vtb<vni>, vtx<vni> in hex), which the controller picks per network and run, so
// two runs on one machine never share a segment: a clash is an error, never a shared bridge.
import { z } from 'zod'
import { call, defineService } from './contract.ts'
import { ipv4, linkName } from './faults.ts'

export const cidr = z
  .string()
  .regex(/^(\d{1,3}\.){3}\d{1,3}\/([0-9]|[12]\d|3[0-2])$/, 'an IPv4 address with a prefix, like 10.77.0.1/24')

export const vni = z
  .number()
  .int()
  .min(1)
  .max(2 ** 24 - 1)

export const networkCreate = z.strictObject({
  /** VXLAN network identifier: the same on every host of the network. */
  vni,
  /** The other hosts' underlay addresses (VXLAN flooding goes to each). */
  peers: z.array(ipv4).max(256),
  /** This host's underlay address (default: the source address of the route to the first peer). */
  local: ipv4.optional(),
  /** The underlay interface (default: the one routing to the first peer). */
  device: linkName.optional(),
  /** UDP port of VXLAN (default 4789). */
  port: z.number().int().min(1).max(65535).optional(),
})

export interface NetworkInfo {
  vni: number
  bridge: string
  vxlan: string
  /** MTU of the segment: the underlay's minus the VXLAN overhead (50 bytes). */
  mtu: number
  local?: string
  device?: string
}

export interface AttachInfo {
  /** The bridge's MAC address: what frames of this host's own processes carry. */
  mac: string
  ip: string
}

export const network = defineService('network', {
  create: call(networkCreate).returns<NetworkInfo>(),
  /** Gives this host's own processes an address on the network (on the bridge itself). */
  attach: call(z.strictObject({ vni, ip: cidr })).returns<AttachInfo>(),
  destroy: call(z.strictObject({ vni })).returns<boolean>(),
  list: call().returns<NetworkInfo[]>(),
})

export const bridgeName = (id: number) => `vtb${id.toString(16).padStart(6, '0')}`
export const vxlanName = (id: number) => `vtx${id.toString(16).padStart(6, '0')}`
export const VXLAN_OVERHEAD = 50
