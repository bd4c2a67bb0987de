// The shape of a migration: what the caller asks for, what it gets back, and the narrow view of "a QEMU on a
// host" the engine drives. The engine (migrate.ts) speaks only QMP through `MigrationSide`; a driver supplies
// the sides (the Vm handle through the agents, or raw local QEMU processes for tests and the benchmark).
import type { MigrateParameters, MigrationInfo, QmpEvent, QmpExecutor } from '../protocol/qmp.ts'

/** Friendly names for QEMU's migration capabilities; any other QEMU capability name is passed through. */
export type MigrationCapabilityName =
  | 'multifd'
  | 'postcopy-ram'
  | 'xbzrle'
  | 'auto-converge'
  | 'return-path'
  | 'zero-blocks'
  | 'compress'
  | 'events'
  | 'late-block-activate'
  | 'pause-before-switchover'
  | 'dirty-bitmaps'
  | 'validate-uuid'
  | (string & {})

/** migrate-set-parameters keys (QMP's own type: the known ones typed, others passed through as written). */
export type MigrationParameters = MigrateParameters

export type MigrationPhase =
  | 'precheck'
  | 'start-destination'
  | 'configure'
  | 'incoming'
  | 'storage'
  | 'migrate'
  | 'postcopy'
  | 'complete'
  | 'resume'
  | 'cleanup'

export interface MigrationProgress {
  phase: MigrationPhase
  /** QEMU's status on the source. */
  status: string
  elapsedMs: number
  transferredBytes: number
  remainingBytes: number
  totalBytes: number
  dirtySyncCount: number
  mbps: number
  /** Block mirror progress when storage is copied. */
  storage?: { offset: number; len: number; ready: boolean }
}

/** QEMU's numbers at one poll during the migrate phase (MigrationResult.samples; charted by the html report). */
export interface MigrationSample {
  /** Milliseconds since `migrate` was issued. */
  t: number
  phase: MigrationPhase
  /** QEMU's status on the source. */
  status: string
  transferredBytes: number
  remainingBytes: number
  totalBytes: number
  /** QEMU's current throughput, megabits per second. */
  mbps: number
  /** Guest RAM dirtied per second (QEMU's dirty-pages-rate × page size), bytes. */
  dirtyBytesPerSec: number
  dirtySyncCount: number
}

export interface MigrationResult {
  status: 'completed'
  from: string
  to: string
  /** Wall time of the whole migrate() call, including pre-checks and start of the destination. */
  wallMs: number
  /** QEMU's total-time: from `migrate` to completion. */
  totalTimeMs: number
  /** QEMU's downtime: guest stopped on the source until the destination had all state. */
  downtimeMs: number
  setupTimeMs: number
  transferredBytes: number
  /** Average over QEMU's total time, in megabits per second. */
  throughputMbps: number
  dirtySyncCount: number
  postcopyRequests: number
  /** Capabilities QEMU reports enabled on the source. */
  capabilities: string[]
  parameters: MigrationParameters
  /** Whether the switch to postcopy happened. */
  postcopy: boolean
  storage: 'shared' | 'copy'
  /** Bytes copied by the block mirror when storage was copied. */
  storageBytes: number
  /** QEMU's numbers over time, one sample per poll from `migrate` to completion (at most 1000, evenly thinned). */
  samples: MigrationSample[]
  /** query-migrate as QEMU returned it at the end. */
  raw: MigrationInfo
}

/** One QEMU process, as the engine sees it: QMP commands typed by name (src/protocol/qmp.ts). */
export interface MigrationSide extends QmpExecutor {
  /** Host name, for messages. */
  host: string
  /** Address other hosts reach this host at (the destination listens on it). */
  address: string
  onEvent(listener: (ev: QmpEvent) => void): () => void
  /** Resolves when the QEMU process (or the link to it) is gone, with the reason. */
  lost: Promise<string>
  /** Why the link to this side's host is down now (undefined while it is up): the error names that host. */
  linkDown?(): string | undefined
  /** The host is known to be gone for good (its agent died): recovery does not call it. */
  gone?(): boolean
}

/** A destination QEMU started by the driver, waiting (`-incoming defer`); paused (-S) or resuming itself once loaded. */
export interface DestinationSide extends MigrationSide {
  /** Drives to fill by block mirror when storage is copied: source device name → NBD export to write. */
  copyDrives?: { device: string; exportNode: string }[]
  destroy(): Promise<void>
}

export interface StartDestinationOptions {
  storage: 'shared' | 'copy'
}

/** What migrate() needs from wherever the VM lives. */
export interface MigrationDriver<Host> {
  readonly source: MigrationSide
  /** Throws a plain Error saying what is wrong (same host, not connected, not enough memory, ...). */
  precheck(to: Host): Promise<void>
  hostName(host: Host): string
  startDestination(to: Host, options: StartDestinationOptions): Promise<DestinationSide>
  /** A TCP port free on the destination host's address (for the NBD export). */
  freePort(to: Host): Promise<number>
  /**
   * Optional: throws when the source cannot open a TCP connection to the destination host right now. Checked
   * just before `migrate`: QEMU cannot cancel a migration whose connect hangs (a partition drops the SYNs),
   * it stays 'cancelling' until the kernel gives up on the connect, minutes later.
   */
  checkPath?(to: Host): Promise<void>
  /** Migration succeeded: the source QEMU is paused in postmigrate; shut it down, point the handle at `dest`. */
  commit(dest: DestinationSide, to: Host): Promise<void>
}

export interface MigrateOptions<Host, V = unknown> {
  to: Host
  /** Capabilities to enable (true) or disable (false) on both sides. */
  capabilities?: Partial<Record<MigrationCapabilityName, boolean>>
  parameters?: MigrationParameters
  /**
   * Switch to postcopy: `true` after the first full pass over RAM (the first dirty sync), a number to switch
   * after that many milliseconds of precopy. Enables postcopy-ram on both sides.
   */
  postcopy?: boolean | number
  /** 'shared' (default): disks are on storage both hosts see. 'copy': mirror host-local disks over NBD. */
  storage?: 'shared' | 'copy'
  /** Milliseconds for the whole migration; on expiry it is cancelled and the source keeps running. */
  timeout?: number
  /** Called about every `progressIntervalMs` (default 250) with QEMU's numbers. */
  onProgress?: (progress: MigrationProgress) => void
  progressIntervalMs?: number
  /** Runs concurrently with the migration (a workload); its error fails the migration call. */
  during?: (vm: V) => Promise<unknown>
  /** Runs on the migrated VM afterwards (a check); its error fails the call after the migration completed. */
  after?: (vm: V) => Promise<unknown>
  /** Cancels the migration (the source keeps running). */
  signal?: AbortSignal
}
