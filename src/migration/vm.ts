// vm.migrate(): a VM managed by the agents migrates through the engine (migrate.ts) with the agents' driver
// (driver.ts), reported as a step with the result attached. The Vm handle (src/vm/) implements MigratableVm.
import { apiStep } from '../runner/apiStep.ts'
import type { Progress } from '../runner/results.ts'
import { isHost, type MigratableVm, type MigrateVmOptions, vmDriver } from './driver.ts'
import { runMigration } from './migrate.ts'
import type { MigrationProgress, MigrationResult } from './types.ts'

export type { MigratableVm, MigrateVmOptions }

/** Migrates `vm` to `options.to` (see MigrateOptions); reported as a test step with the result attached. */
export async function migrateVm<V extends MigratableVm>(vm: V, options: MigrateVmOptions<V>): Promise<MigrationResult> {
  const run = async (report?: (p: Progress) => void) => {
    const subs: (() => void)[] = []
    const onProgress = (p: MigrationProgress) => {
      report?.(stepProgress(p))
      options.onProgress?.(p)
    }
    try {
      return await runMigration(vmDriver(vm, options, subs), { ...options, onProgress }, vm)
    } finally {
      for (const off of subs) off()
    }
  }
  if (options.report === false) return run()
  const toName = isHost(options.to) ? options.to.name : String(options.to)
  return apiStep(`migrate ${vm.name}: ${vm.host.name} → ${toName}`, async step => {
    const result = await run(p => step.progress(p))
    const { raw, ...summary } = result
    await step.attach(`migration ${result.from} → ${result.to}`, {
      body: JSON.stringify({ ...summary, queryMigrate: raw }, null, 2),
      contentType: 'application/json',
    })
    return result
  })
}

/** The engine's numbers as a step's progress: RAM sent so far (of the total), or the storage copy's. */
function stepProgress(p: MigrationProgress): Progress {
  if (p.phase === 'storage' && p.storage && p.storage.len > 0)
    return { message: 'copying storage', bytes: p.storage.offset, totalBytes: p.storage.len }
  if (p.totalBytes <= 0) return { message: p.phase }
  const done = Math.max(0, p.totalBytes - p.remainingBytes)
  return {
    message: p.phase === 'postcopy' ? 'postcopy' : 'precopy',
    percent: Math.min(100, Math.round((done / p.totalBytes) * 1000) / 10),
    bytes: p.transferredBytes,
  }
}
