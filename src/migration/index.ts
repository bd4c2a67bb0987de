// Public surface of vt's live migration (re-exported from the package entry, src/index.ts).

export type { BadPage, IntegrityReport, MemtestRange } from '../protocol/memtest.ts'
export { describeReport, memtestRange } from '../protocol/memtest.ts'
export { MigrationError } from './errors.ts'
export { memtestSpec, verifyMemoryIntegrity } from './memtestVm.ts'
export { migrateAll, pingPong } from './pingPong.ts'
export type { MigrationCommand, MigrationCommandsOptions } from './stress/commands.ts'
export { migrationCommands } from './stress/commands.ts'
export type { MemtestSnapshotOptions } from './stress/instant.ts'
export { memtestSnapshot } from './stress/instant.ts'
export { InvariantError } from './stress/invariants.ts'
export type { MigrationModel, MigrationSystem, StepRecord, StressGuest } from './stress/model.ts'
export type { RunMigrationCommandsOptions, StressFixtures } from './stress/run.ts'
export { runMigrationCommands } from './stress/run.ts'
export type {
  MigrateOptions,
  MigrationCapabilityName,
  MigrationParameters,
  MigrationPhase,
  MigrationProgress,
  MigrationResult,
  MigrationSample,
} from './types.ts'
export type { VerifyOptions } from './verify.ts'
export { MemoryIntegrityError } from './verify.ts'
export type { MigratableVm, MigrateVmOptions } from './vm.ts'
export { migrateVm } from './vm.ts'
