// The `faults` service: failures a spec injects on one host, each recorded with the session so that the agent
// heals it when the session ends (also after a controller crash: its lease expires).
//   partition   drops this host's traffic to and from peer addresses (nftables, a table per fault)
//   slowLink    shapes this host's traffic to a peer to a rate (tc htb + tbf on the route's interface)
//   dropFrames  drops frames between two sets of MACs on a guest network's bridge (nftables, bridge family)
//   killQemu    SIGKILLs a VM's QEMU (checked to be QEMU running that VM)
//   heal        undoes one fault; `list` shows the active ones
import { z } from 'zod'
import { call, defineService } from './contract.ts'

export const ipv4 = z
  .string()
  .regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/, 'an IPv4 address like 10.0.0.2')
export const macAddress = z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'a lower-case MAC like 52:54:00:12:34:56')
export const linkName = z
  .string()
  .min(1)
  .max(15)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'an interface name (letters, digits, "_", ".", "-"; at most 15)')
/** tc's rate syntax: '20mbit', '512kbit', '1gbit', '100kbps'. */
export const rate = z
  .string()
  .regex(/^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$/i, 'a rate like "20mbit", "512kbit" or "1gbit"')

export type FaultKind = 'partition' | 'slowLink' | 'dropFrames'

export interface FaultInfo {
  id: string
  kind: FaultKind
  /** What it does, for reports: "drop traffic to/from 10.213.4.12". */
  description: string
}

export const faults = defineService('faults', {
  partition: call(z.strictObject({ peers: z.array(ipv4).min(1).max(256) })).returns<FaultInfo>(),
  slowLink: call(z.strictObject({ peer: ipv4, rate })).returns<FaultInfo>(),
  dropFrames: call(
    z.strictObject({
      bridge: linkName,
      a: z.array(macAddress).min(1).max(256),
      b: z.array(macAddress).min(1).max(256),
    }),
  ).returns<FaultInfo>(),
  killQemu: call(
    z.strictObject({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/), pid: z.number().int().min(2) }),
  ).returns<void>(),
  /** False when no such fault is active (healed already). */
  heal: call(z.string().min(1).max(64)).returns<boolean>(),
  list: call().returns<FaultInfo[]>(),
})
