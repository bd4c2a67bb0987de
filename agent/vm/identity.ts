// What makes a restored VM its own machine, applied over the command channel right after the restore: its
// hostname, each NIC's MAC (the MAC is part of the saved device state, so the -device mac= of the new QEMU
// is overridden by the template's; the guest sets its own, which virtio-net passes to QEMU's filter), its
// addresses, the clock (frozen at the save) and a reseeded random number generator (see reseed.ts).
import { randomBytes } from 'node:crypto'
import type { VmSpecParsed } from '../../src/protocol/vm.ts'
import { shellQuote } from './guest.ts'
import type { Machine } from './machine.ts'
import { reseedProgram } from './reseed.ts'

/** printf %b text for arbitrary bytes (octal escapes, safe for single quotes). */
function octal(bytes: Buffer): string {
  let out = ''
  for (const b of bytes) out += `\\0${b.toString(8).padStart(3, '0')}`
  return out
}

/** A fresh locally administered MAC in QEMU's 52:54:00 range. */
export function randomMac(): string {
  return `52:54:00:${[...randomBytes(3)].map(b => b.toString(16).padStart(2, '0')).join(':')}`
}

export interface IdentityInput {
  hostname: string
  /** The NICs as the clone has them; `from` is the MAC each one had in the saved state. */
  nics: { from: string; spec: NonNullable<VmSpecParsed['nics']>[number] }[]
  /** Reconfigure NICs (a clone); an in-place restore keeps the saved addresses. */
  network: boolean
}

/** The guest script: shell only, no quoting of untrusted text (names and MACs are validated by the spec). */
export function identityScript(input: IdentityInput, nowMs = Date.now()): string {
  const lines = [
    'set -e',
    `echo ${shellQuote(input.hostname)} > /proc/sys/kernel/hostname`,
    // The clock stood still since the save; round to the nearest second busybox date can set.
    `date -s @${Math.round((nowMs + 20) / 1000)} > /dev/null`,
    `[ -x /run/vt/reseed ] || { printf '%b' '${octal(reseedProgram())}' > /run/vt/reseed; chmod 700 /run/vt/reseed; }`,
    `printf '%b' '${octal(randomBytes(64))}' | /run/vt/reseed`,
  ]
  if (input.network) {
    const gw = input.nics.find(n => n.spec.gateway)?.spec.gateway
    for (const { from, spec } of input.nics) {
      if (!from) continue
      lines.push(
        `dev=; for e in /sys/class/net/eth*; do read -r m < "$e/address"; [ "$m" = ${from.toLowerCase()} ] && dev=\${e##*/}; done`,
        '[ -n "$dev" ]',
        'ip addr flush dev "$dev"',
      )
      if (spec.mac) lines.push(`ip link set dev "$dev" address ${spec.mac.toLowerCase()}`)
      if (spec.mtu) lines.push(`ip link set dev "$dev" mtu ${spec.mtu}`)
      if (spec.ip) lines.push(`ip addr add ${spec.ip} dev "$dev"`)
      lines.push('ip link set dev "$dev" up')
    }
    if (gw) lines.push(`ip route replace default via ${gw}`)
  }
  return lines.join('\n')
}

/** Applies the identity; throws with the guest's words when a step fails. */
export async function applyIdentity(m: Machine, input: IdentityInput): Promise<void> {
  const r = await m.exec(identityScript(input), { timeoutMs: 30_000 })
  if (r.exitCode !== 0) {
    throw new Error(
      `${m.label}: giving the restored VM its own identity failed (exit ${r.exitCode}): ${r.stderr.toString().trim()}`,
    )
  }
}
