// MigrationError: a migration that did not complete. It says where it stopped (phase), between which hosts,
// QEMU's own error text when QEMU gave one, the last numbers, and whether the source is still running.
// A VtError with code MIGRATION_FAILED; `qmp` is set when a QMP command QEMU rejected ended it.
import { ErrorCodes, type QmpErrorInfo, VtError } from '../protocol/errors.ts'
import type { MigrationPhase, MigrationProgress } from './types.ts'

export class MigrationError extends VtError {
  readonly phase: MigrationPhase
  readonly from: string
  readonly to: string
  /** QEMU's error-desc (or the QMP error text) when QEMU reported the failure. */
  readonly qemuError?: string
  readonly lastStats?: MigrationProgress
  /** Checked after the failure: the source VM is running again (false only after postcopy started). */
  sourceRunning: boolean

  constructor(init: {
    message: string
    phase: MigrationPhase
    from: string
    to: string
    qemuError?: string
    lastStats?: MigrationProgress
    sourceRunning?: boolean
    qmp?: QmpErrorInfo
    cause?: unknown
  }) {
    super('MigrationError', `migration ${init.from} → ${init.to} failed during ${init.phase}: ${init.message}`, {
      code: ErrorCodes.migrationFailed,
      cause: init.cause,
      qmp: init.qmp,
    })
    this.phase = init.phase
    this.from = init.from
    this.to = init.to
    this.qemuError = init.qemuError
    this.lastStats = init.lastStats
    this.sourceRunning = init.sourceRunning ?? false
  }
}
