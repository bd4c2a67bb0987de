// vm.migrate(): a VM managed by the agents migrates through the engine (migrate.ts) with the agents' driver
// (driver.ts), reported as a step with the result attached. The Vm handle (src/vm/) implements MigratableVm.
import { apiStep } from '../runner/apiStep.ts'
import { isHost, type MigratableVm, type MigrateVmOptions, vmDriver } from './driver.ts'
import { runMigration } from './migrate.ts'
import type { MigrationResult } from './types.ts'

export type { MigratableVm, MigrateVmOptions }

/** Migrates `vm` to `options.to` (see MigrateOptions); reported as a test step with the result attached. */
export async function migrateVm<V extends MigratableVm>(vm: V, options: MigrateVmOptions<V>): Promise<MigrationResult> {
  const run = async () => {
    const subs: (() => void)[] = []
    try {
      return await runMigration(vmDriver(vm, options, subs), options, vm)
    } finally {
      for (const off of subs) off()
    }
  }
  if (options.report === false) return run()
  const toName = isHost(options.to) ? options.to.name : String(options.to)
  return apiStep(`migrate ${vm.name}: ${vm.host.name} → ${toName}`, async step => {
    const result = await run()
    const { raw, ...summary } = result
    await step.attach(`migration ${result.from} → ${result.to}`, {
      body: JSON.stringify({ ...summary, queryMigrate: raw }, null, 2),
      contentType: 'application/json',
    })
    return result
  })
}
