// MigrationError: a migration that did not complete. It says where it stopped (phase), between which hosts,
// QEMU's own error text when QEMU gave one, the last numbers, and whether the source is still running.
import type { MigrationPhase, MigrationProgress } from './types.ts'

export class MigrationError extends Error {
  override name = 'MigrationError'
  readonly phase: MigrationPhase
  readonly from: string
  readonly to: string
  /** QEMU's error-desc (or the QMP error text) when QEMU reported the failure. */
  readonly qemuError?: string
  readonly lastStats?: MigrationProgress
  /** Checked after the failure: the source VM is running again (false only after postcopy started). */
  sourceRunning: boolean
  override readonly cause?: unknown

  constructor(init: {
    message: string
    phase: MigrationPhase
    from: string
    to: string
    qemuError?: string
    lastStats?: MigrationProgress
    sourceRunning?: boolean
    cause?: unknown
  }) {
    super(`migration ${init.from} → ${init.to} failed during ${init.phase}: ${init.message}`)
    this.phase = init.phase
    this.from = init.from
    this.to = init.to
    this.qemuError = init.qemuError
    this.lastStats = init.lastStats
    this.sourceRunning = init.sourceRunning ?? false
    this.cause = init.cause
  }
}
