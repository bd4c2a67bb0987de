// Shared bits of the VM tests: temp dirs and a leak check for QEMU processes started under them.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** Pids of QEMU processes whose command line mentions `marker` (e.g. a test's temp dir). */
export function qemuProcesses(marker: string): number[] {
  const out: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8')
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      if (cmd.includes('qemu-system') && cmd.includes(marker) && !/\) Z /.test(stat)) out.push(Number(p))
    } catch {}
  }
  return out
}

export async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (cond()) return true
    await new Promise(r => setTimeout(r, 50))
  }
  return cond()
}
