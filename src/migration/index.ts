// Public surface of vt's live migration (re-exported from the package entry, src/index.ts).

export type { BadPage, IntegrityReport, MemtestRange } from '../protocol/memtest.ts'
export { describeReport, memtestRange } from '../protocol/memtest.ts'
export { MigrationError } from './errors.ts'
export type {
  MigrateOptions,
  MigrationCapabilityName,
  MigrationParameters,
  MigrationPhase,
  MigrationProgress,
  MigrationResult,
} from './types.ts'
export type { VerifyOptions } from './verify.ts'
export { MemoryIntegrityError } from './verify.ts'
export type { MigratableVm, MigrateVmOptions } from './vm.ts'
export { memtestSpec, migrateAll, migrateVm, pingPong, verifyMemoryIntegrity } from './vm.ts'
