// verifyMemoryIntegrity: stop the memtest guest, dump its RAM range through QMP pmemsave into a file on the
// VM's own host, check it there (IntegrityChecker, run by the agent or locally), delete the dump, and resume
// the guest if it was running. Throws MemoryIntegrityError naming the first bad page.

import { describeReport, type IntegrityReport, type MemtestRange } from '../protocol/memtest.ts'
import type { QmpExecutor } from '../protocol/qmp.ts'

/** What the check needs from wherever the VM runs. */
export interface MemoryDumpAccess {
  qmp: QmpExecutor
  /** A directory on the VM's host where QEMU may write the dump. */
  dumpDir: string
  /** Checks the dump file on the VM's host. */
  check(path: string, range: MemtestRange): Promise<IntegrityReport>
  /** Deletes the dump file on the VM's host (must not throw when it is missing). */
  remove(path: string): Promise<void>
  /** Used in error messages. */
  label?: string
}

export interface VerifyOptions {
  /** Resume the guest afterwards if it was running before (default true). */
  resume?: boolean
  /** Keep the dump file for inspection when the check fails (default false). */
  keepDumpOnFailure?: boolean
  /** pmemsave timeout in ms (default 120 s: TCG writes a few hundred MiB/s). */
  timeout?: number
}

export class MemoryIntegrityError extends Error {
  override name = 'MemoryIntegrityError'
  constructor(
    message: string,
    readonly report: IntegrityReport,
    readonly dumpPath?: string,
  ) {
    super(message)
  }
}

let dumpSeq = 0

export async function verifyMemoryIntegrityWith(
  access: MemoryDumpAccess,
  range: MemtestRange,
  options: VerifyOptions = {},
): Promise<IntegrityReport> {
  const { qmp } = access
  const label = access.label ?? 'vm'
  const status = await qmp.execute('query-status')
  const wasRunning = status.running
  if (wasRunning) await qmp.execute('stop')
  const path = `${access.dumpDir.replace(/\/+$/, '')}/vt-memdump-${process.pid}-${Date.now()}-${dumpSeq++}.bin`
  let keep = false
  try {
    await qmp.execute(
      'pmemsave',
      { val: range.start, size: range.end - range.start, filename: path },
      {
        timeout: options.timeout ?? 120_000,
      },
    )
    const report = await access.check(path, range)
    if (!report.ok) {
      keep = options.keepDumpOnFailure ?? false
      throw new MemoryIntegrityError(
        `${label}: guest memory corrupted: ${describeReport(report)}${keep ? ` (dump kept at ${path})` : ''}`,
        report,
        keep ? path : undefined,
      )
    }
    return report
  } finally {
    if (!keep) await access.remove(path)
    if (wasRunning && (options.resume ?? true)) await qmp.execute('cont')
  }
}
