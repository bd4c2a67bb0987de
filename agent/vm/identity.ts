// What makes a restored VM its own machine, applied over the command channel right after the restore: its
// hostname, each NIC's MAC (the MAC is part of the saved device state, so the -device mac= of the new QEMU
// is overridden by the template's; the guest sets its own, which virtio-net passes to QEMU's filter), its
// addresses, the clock (frozen at the save) and a reseeded random number generator. Hostname, clock and RNG
// are one run of /bin/vt-identity (agent/image/identity/vt-identity.c): the tiny image carries it; other
// guests get it sent once (octal text through printf is slow under TCG, so the tiny guest never pays that).
import { randomBytes } from 'node:crypto'
import type { VmSpecParsed } from '../../src/protocol/vm.ts'
import { VT_IDENTITY_BASE64 } from '../image/identity/program.ts'
import { shellQuote } from './guest.ts'
import type { Machine } from './machine.ts'

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
  /** The new hostname; undefined keeps the guest's (a restore in place). */
  hostname?: string
  /** The NICs as the clone has them; `from` is the MAC each one had in the saved state. */
  nics: { from: string; spec: NonNullable<VmSpecParsed['nics']>[number] }[]
  /** Reconfigure NICs (a clone); an in-place restore keeps the saved addresses. */
  network: boolean
}

/** vt-identity's arguments: hostname (or - to keep it), the time in ms, 64 random bytes in hex. */
export function identityArgs(input: Pick<IdentityInput, 'hostname'>, nowMs = Date.now()): string[] {
  // +20 ms: about the time the command takes to reach the program.
  return [input.hostname ?? '-', String(Math.round(nowMs + 20)), randomBytes(64).toString('hex')]
}

/** The shell lines that give a clone's NICs their own MACs and addresses (none for an in-place restore). */
export function networkScript(input: IdentityInput): string[] {
  if (!input.network) return []
  const lines: string[] = []
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
  return lines
}

/**
 * The whole identity as one guest script, for guests without the tiny command loop (qemu-guest-agent): it
 * sends the program along when the guest lacks it (5 KiB of printf text, fine over the agent's channel).
 */
export function identityScript(input: IdentityInput, nowMs = Date.now()): string {
  const program = `v=/bin/vt-identity; [ -x $v ] || { v=/run/vt/vt-identity; [ -x $v ] || { mkdir -p /run/vt && printf '%b' '${octal(Buffer.from(VT_IDENTITY_BASE64, 'base64'))}' > $v && chmod 700 $v; }; }`
  const args = identityArgs(input, nowMs).map((a, i) => (i === 0 && a !== '-' ? shellQuote(a) : a))
  return ['set -e', program, `$v ${args.join(' ')}`, ...networkScript(input)].join('\n')
}

const EXIT_MEANING: Record<number, string> = {
  81: 'vt-identity: bad arguments',
  82: 'vt-identity: sethostname failed',
  83: 'vt-identity: setting the clock failed',
  84: 'vt-identity: cannot open /dev/urandom',
  85: 'vt-identity: RNDADDENTROPY failed',
  86: 'vt-identity: RNDRESEEDCRNG failed',
}

/** Applies the identity; throws with the guest's words when a step fails. */
export async function applyIdentity(m: Machine, input: IdentityInput): Promise<void> {
  const fail = (rc: number, said: string) =>
    new Error(`${m.label}: giving the restored VM its own identity failed (exit ${rc}): ${said}`)
  if (m.guest) {
    // The tiny guest: straight from its command loop (the answer doubles as readiness), then the NICs.
    const rc = await m.guest.identify(identityArgs(input), 30_000)
    if (rc !== 0) throw fail(rc, EXIT_MEANING[rc] ?? (rc === 127 ? 'the guest has no /bin/vt-identity' : ''))
    const net = networkScript(input)
    if (net.length === 0) return
    const r = await m.exec(['set -e', ...net].join('\n'), { timeoutMs: 30_000 })
    if (r.exitCode !== 0) throw fail(r.exitCode, r.stderr.toString().trim())
    return
  }
  const r = await m.exec(identityScript(input), { timeoutMs: 30_000 })
  if (r.exitCode !== 0) throw fail(r.exitCode, r.stderr.toString().trim() || EXIT_MEANING[r.exitCode] || '')
}
