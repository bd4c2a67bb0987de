// Is a host loopback? Decided on the address, not on how it is spelled: `127.example.invalid` is a name that
// starts with "127." and may resolve anywhere. Used where loopback allows cleartext (agent listen, ws:// URLs).
import { BlockList, isIP } from 'node:net'

const loopback = new BlockList()
loopback.addSubnet('127.0.0.0', 8, 'ipv4') // also matches IPv4-mapped IPv6 (::ffff:127.0.0.1)
loopback.addAddress('::1', 'ipv6')

/** True for an IP literal in 127.0.0.0/8 or ::1 (IPv4-mapped and bracketed too), or the name `localhost`. */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase()
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1)
  if (h === 'localhost' || h === 'localhost.') return true
  const family = isIP(h)
  if (family === 0) return false // any other name: it may resolve anywhere
  return loopback.check(h, family === 4 ? 'ipv4' : 'ipv6')
}
