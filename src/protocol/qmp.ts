// Types of the QMP messages and of the commands vt uses (QEMU 7.2 schema, trimmed to the fields we read).
// Every QMP caller (the agent's client, the vm service's pass-through, the migration engine) is typed by
// `QmpCommands`: add a command or a field here rather than casting a result where it is used. Any other
// command goes through `execute(name, args)` typed loosely on purpose.

export interface QmpGreeting {
  QMP: { version: { qemu: { major: number; minor: number; micro: number }; package: string }; capabilities: string[] }
}

export interface QmpEvent<D = Record<string, unknown>> {
  event: string
  data?: D
  timestamp: { seconds: number; microseconds: number }
}

export type RunState =
  | 'debug'
  | 'inmigrate'
  | 'internal-error'
  | 'io-error'
  | 'paused'
  | 'postmigrate'
  | 'prelaunch'
  | 'finish-migrate'
  | 'restore-vm'
  | 'running'
  | 'save-vm'
  | 'shutdown'
  | 'suspended'
  | 'watchdog'
  | 'guest-panicked'
  | 'colo'

export interface StatusInfo {
  running: boolean
  singlestep?: boolean
  status: RunState
}

export type MigrationStatus =
  | 'none'
  | 'setup'
  | 'cancelling'
  | 'cancelled'
  | 'active'
  | 'postcopy-active'
  | 'postcopy-paused'
  | 'postcopy-recover'
  | 'completed'
  | 'failed'
  | 'colo'
  | 'pre-switchover'
  | 'device'
  | 'wait-unplug'

export interface MigrationStats {
  transferred: number
  remaining: number
  total: number
  duplicate: number
  normal: number
  'normal-bytes': number
  'dirty-pages-rate': number
  mbps: number
  'dirty-sync-count': number
  'postcopy-requests': number
  'page-size': number
  'multifd-bytes': number
  'pages-per-second': number
  'precopy-bytes'?: number
  'downtime-bytes'?: number
  'postcopy-bytes'?: number
}

export interface MigrationInfo {
  status?: MigrationStatus
  ram?: MigrationStats
  disk?: MigrationStats
  'total-time'?: number
  'expected-downtime'?: number
  downtime?: number
  'setup-time'?: number
  'error-desc'?: string
  'blocked-reasons'?: string[]
  'cpu-throttle-percentage'?: number
  /** Where an incoming migration listens (after migrate-incoming; port 0 is resolved to the real port). */
  'socket-address'?: SocketAddress[]
}

export interface MigrationCapabilityStatus {
  capability: string
  state: boolean
}

/** migrate-set-parameters: all optional; only the keys set are changed. */
export interface MigrateParameters {
  /** Bytes per second. */
  'max-bandwidth'?: number
  /** Milliseconds. */
  'downtime-limit'?: number
  'multifd-channels'?: number
  'max-postcopy-bandwidth'?: number
  'cpu-throttle-initial'?: number
  'cpu-throttle-increment'?: number
  'xbzrle-cache-size'?: number
  'compress-level'?: number
  'compress-threads'?: number
  'decompress-threads'?: number
  'announce-initial'?: number
  [key: string]: unknown
}

export interface BlockJobInfo {
  type: string
  device: string
  len: number
  offset: number
  busy: boolean
  paused: boolean
  speed: number
  'io-status': string
  ready: boolean
  status: string
  'auto-finalize': boolean
  'auto-dismiss': boolean
  error?: string
}

export interface BlockInfo {
  device: string
  qdev?: string
  type: string
  removable: boolean
  locked: boolean
  inserted?: {
    file: string
    drv: string
    'node-name'?: string
    ro: boolean
    image?: ImageInfo
    [key: string]: unknown
  }
  [key: string]: unknown
}

export interface ImageInfo {
  filename: string
  format: string
  'virtual-size': number
  'actual-size'?: number
  [key: string]: unknown
}

export interface CpuInfoFast {
  'cpu-index': number
  'qom-path': string
  'thread-id': number
  target: string
  props?: Record<string, number>
}

export interface SocketAddressInet {
  type: 'inet'
  host: string
  port: string
}
export interface SocketAddressUnix {
  type: 'unix'
  path: string
}
export type SocketAddress = SocketAddressInet | SocketAddressUnix
/** The boxed form some older commands (nbd-server-start) take. */
export type SocketAddressLegacy =
  | { type: 'inet'; data: { host: string; port: string } }
  | { type: 'unix'; data: { path: string } }

/** block-export-add (QEMU 7.2 BlockExportOptions, the NBD flavour). */
export interface BlockExportOptions {
  type: 'nbd' | (string & {})
  id: string
  'node-name': string
  name?: string
  writable?: boolean
  [key: string]: unknown
}

/** announce-self: RARP rounds so switches learn the guest's MAC at its new port. Milliseconds. */
export interface AnnounceParameters {
  initial: number
  max: number
  rounds: number
  step: number
  interfaces?: string[]
  id?: string
}

export interface NameInfo {
  name?: string
}

export interface VersionInfo {
  qemu: { major: number; minor: number; micro: number }
  package: string
}

/** A yank instance (QEMU 6.0+): what `yank` can cut loose; 'migration' exists while a migration holds channels. */
export type YankInstance =
  | { type: 'migration' }
  | { type: 'block-node'; 'node-name': string }
  | { type: 'chardev'; id: string }

export interface CommandInfo {
  name: string
}

/**
 * The commands vt uses: name → [arguments, return value]. `execute` is typed by this map for known names
 * and falls back to `Record<string, unknown>` → `unknown` for any other.
 */
export interface QmpCommands {
  qmp_capabilities: [{ enable?: string[] } | undefined, Record<string, never>]
  'query-status': [undefined, StatusInfo]
  'query-version': [undefined, VersionInfo]
  'query-commands': [undefined, CommandInfo[]]
  'query-name': [undefined, NameInfo]
  'query-kvm': [undefined, { enabled: boolean; present: boolean }]
  stop: [undefined, Record<string, never>]
  cont: [undefined, Record<string, never>]
  system_powerdown: [undefined, Record<string, never>]
  system_reset: [undefined, Record<string, never>]
  quit: [undefined, Record<string, never>]
  'query-migrate': [undefined, MigrationInfo]
  migrate: [{ uri: string; blk?: boolean; inc?: boolean; detach?: boolean; resume?: boolean }, Record<string, never>]
  'migrate-incoming': [{ uri: string }, Record<string, never>]
  'migrate-set-capabilities': [{ capabilities: MigrationCapabilityStatus[] }, Record<string, never>]
  'migrate-set-parameters': [MigrateParameters, Record<string, never>]
  'query-migrate-parameters': [undefined, MigrateParameters]
  'query-migrate-capabilities': [undefined, MigrationCapabilityStatus[]]
  migrate_cancel: [undefined, Record<string, never>]
  'query-yank': [undefined, YankInstance[]]
  yank: [{ instances: YankInstance[] }, Record<string, never>]
  'migrate-continue': [{ state: MigrationStatus }, Record<string, never>]
  'migrate-start-postcopy': [undefined, Record<string, never>]
  pmemsave: [{ val: number; size: number; filename: string; 'cpu-index'?: number }, Record<string, never>]
  memsave: [{ val: number; size: number; filename: string; 'cpu-index'?: number }, Record<string, never>]
  'human-monitor-command': [{ 'command-line': string; 'cpu-index'?: number }, string]
  'query-block': [undefined, BlockInfo[]]
  'query-named-block-nodes': [{ flat?: boolean } | undefined, Record<string, unknown>[]]
  'query-block-jobs': [undefined, BlockJobInfo[]]
  'blockdev-add': [Record<string, unknown>, Record<string, never>]
  'blockdev-del': [{ 'node-name': string }, Record<string, never>]
  'drive-mirror': [
    {
      device: string
      target: string
      format?: string
      sync: 'full' | 'top' | 'none' | 'incremental'
      mode?: 'existing' | 'absolute-paths'
      'job-id'?: string
      speed?: number
      [key: string]: unknown
    },
    Record<string, never>,
  ]
  'blockdev-mirror': [
    {
      'job-id'?: string
      device: string
      target: string
      sync: 'full' | 'top' | 'none' | 'incremental'
      speed?: number
      [key: string]: unknown
    },
    Record<string, never>,
  ]
  'block-job-cancel': [{ device: string; force?: boolean }, Record<string, never>]
  'block-job-complete': [{ device: string }, Record<string, never>]
  'block-job-dismiss': [{ id: string }, Record<string, never>]
  'job-dismiss': [{ id: string }, Record<string, never>]
  'nbd-server-start': [
    { addr: SocketAddressLegacy; 'tls-creds'?: string; 'max-connections'?: number },
    Record<string, never>,
  ]
  'nbd-server-add': [{ device: string; name?: string; writable?: boolean }, Record<string, never>]
  'block-export-add': [BlockExportOptions, Record<string, never>]
  'announce-self': [AnnounceParameters, Record<string, never>]
  'nbd-server-stop': [undefined, Record<string, never>]
  device_add: [{ driver: string; id?: string; bus?: string; [key: string]: unknown }, Record<string, never>]
  device_del: [{ id: string }, Record<string, never>]
  'query-cpus-fast': [undefined, CpuInfoFast[]]
  screendump: [{ filename: string; format?: 'ppm' | 'png' }, Record<string, never>]
  netdev_add: [{ type: string; id: string; [key: string]: unknown }, Record<string, never>]
  netdev_del: [{ id: string }, Record<string, never>]
  set_link: [{ name: string; up: boolean }, Record<string, never>]
  'qom-get': [{ path: string; property: string }, unknown]
  'qom-set': [{ path: string; property: string; value: unknown }, Record<string, never>]
}

export type QmpCommandName = keyof QmpCommands
export type QmpArgs<K extends string> = K extends QmpCommandName
  ? QmpCommands[K][0]
  : Record<string, unknown> | undefined
export type QmpReturn<K extends string> = K extends QmpCommandName ? QmpCommands[K][1] : unknown

/** One line of the transcript: what was sent, what came back, and when (ms since epoch). */
export type TranscriptEntry =
  | { at: number; dir: 'out'; id: string; command: string; args?: unknown }
  | { at: number; dir: 'in'; id: string; ok: true; return: unknown; ms: number }
  | { at: number; dir: 'in'; id: string; ok: false; error: { class: string; desc: string }; ms: number }
  | { at: number; dir: 'event'; event: string; data?: unknown }
  | { at: number; dir: 'note'; text: string }

/** A command name: the known ones complete in editors, any other string is accepted. */
export type QmpCommandKey = QmpCommandName | (string & {})

/**
 * Something that runs QMP commands with typed arguments and results: the agent's QMP client, or the controller's
 * proxy to it through the vm service.
 */
export interface QmpExecutor {
  execute<K extends QmpCommandKey>(command: K, args?: QmpArgs<K>, options?: { timeout?: number }): Promise<QmpReturn<K>>
}

/** The controller's view of `vm.qmp`: arguments and result typed by the command name. */
export type VmQmpCall = <K extends QmpCommandKey>(name: string, command: K, args?: QmpArgs<K>) => Promise<QmpReturn<K>>

/**
 * VM `name`'s QEMU as a QmpExecutor, through a host's `vm.qmp`. Here rather than beside the `vm` service so that
 * migration code can use it without loading the contract's schemas (and zod) into every test worker.
 */
export function vmQmpExecutor(qmp: VmQmpCall, name: string): QmpExecutor {
  return { execute: (command, args) => qmp(name, command, args) }
}
