// The tiny guest's network words on the kernel command line (read by its /init, agent/image/init.ts).
import type { VmSpecParsed } from '../../src/protocol/vm.ts'

/**
 * What the tiny guest configures: `vt.nic=<mac>,<ip/prefix or ->,<mtu or ->` per NIC with a MAC (found by
 * its MAC, whatever the guest names it), else the older positional `vt.ip=a,b` for eth0, eth1...
 */
export function netArgs(spec: VmSpecParsed): string {
  const nics = spec.nics ?? []
  const gw = nics.find(n => n.gateway)?.gateway
  const words = gw ? [`vt.gw=${gw}`] : []
  if (nics.some(n => n.mac)) {
    for (const n of nics) if (n.mac) words.push(`vt.nic=${n.mac.toLowerCase()},${n.ip ?? '-'},${n.mtu ?? '-'}`)
    return words.join(' ')
  }
  const ips = nics.map(n => n.ip).filter(Boolean)
  if (ips.length) words.push(`vt.ip=${ips.join(',')}`)
  return words.join(' ')
}
