// Tests that need QEMU, root or network namespaces skip with a reason on a machine that lacks them, but never
// in CI: with CI set, a missing requirement is a failure, because .ci/run installs everything.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { TestContext } from 'node:test'

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export const machine = {
  qemu: has('qemu-system-x86_64') && has('qemu-img'),
  root: process.getuid?.() === 0,
  netns: process.getuid?.() === 0 && has('ip') && existsSync('/proc/self/ns/net'),
  nft: has('nft'),
  chromium: has('chromium'),
  /** qemu-guest-agent on the host: the QGA client's tests talk to a real one (test/qga/). */
  qga: has('qemu-ga') || existsSync('/usr/sbin/qemu-ga'),
  /** Builds the debian image (agent/image/debian.ts). */
  mmdebstrap: has('mmdebstrap') && (has('mke2fs') || existsSync('/usr/sbin/mke2fs')),
}

export type Requirement = keyof typeof machine

/**
 * Returns true when the test may run. Otherwise skips it with the reason, or, under CI, fails it.
 * Usage: `test('boots', t => { if (!requires(t, 'qemu')) return; ... })`
 */
export function requires(t: TestContext, ...what: Requirement[]): boolean {
  const missing = what.filter(w => !machine[w])
  if (missing.length === 0) return true
  const reason = `needs ${missing.join(', ')} (not available on this machine)`
  if (process.env.CI) throw new Error(`${reason}: CI must provide it, see .ci/run`)
  t.skip(reason)
  return false
}
