// `vt test`: load the config, plan, dispatch, report. (Work in progress: planning and dispatch land next.)
import { loadConfig, resolveConfigFile, resolveWorkers } from '../../config/load.ts'
import type { RunOptions } from './options.ts'

export async function runTests(options: RunOptions): Promise<number> {
  const overrides = { ...options.overrides }
  if (options.workers !== undefined) overrides.workers = resolveWorkers(options.workers)
  const configFile = resolveConfigFile(options.cwd, options.config)
  await loadConfig(configFile, overrides)
  throw Object.assign(new Error('vt test: the planner and dispatcher are not committed yet'), { vtUserError: true })
}
