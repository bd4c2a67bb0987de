// Public surface of vt's live migration (re-exported from 'vt').
export { MigrationError } from './errors.ts'
export type { BadPage, IntegrityReport } from './integrity.ts'
export { checkMemoryDump, describeReport } from './integrity.ts'
export type { MemtestRange } from './memtest/image.ts'
export { memtestRange } from './memtest/image.ts'
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
