// The `vm` service: QEMU virtual machines on a host, each owned by a session and reaped with it.
// A VmSpec says what to boot; the agent turns it into a QEMU command line (no shell), starts it, connects QMP,
// captures the serial console, and talks to the tiny guest over its command channel for `exec`.
import { z } from 'zod'
import { absolutePath, bytes, call, defineService, envSchema, event } from './contract.ts'
import type { QmpEvent, VmQmpCall } from './qmp.ts'
import { volumeRef } from './storage.ts'

export const snapshotName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-", starting with a letter or digit')

const vmName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-", starting with a letter or digit')

/** '256M', '1G', '512' (MiB), or a number of MiB. */
export const memorySize = z.union([
  z
    .number()
    .int()
    .min(16)
    .max(16 * 1024 * 1024),
  z.string().regex(/^\d+(\.\d+)?\s*([KMGT]i?B?)?$/i, 'a size like "256M", "1G" or a number of MiB'),
])

export const diskSpec = z
  .strictObject({
    /** A named base image (e.g. 'tiny'): the VM gets a qcow2 overlay on it, the base is never modified. */
    image: z.string().min(1).optional(),
    /** An existing disk file used as is. */
    path: absolutePath.optional(),
    /** A volume of a storage pool (see the `storage` service), used as is: the VM writes to it. */
    volume: volumeRef.optional(),
    /** The memtest guest's boot disk for this RAM range, built by the agent (raw, read-only). */
    memtest: z.strictObject({ start: z.number().int().min(0), end: z.number().int().min(0) }).optional(),
    /** A new empty disk of this size (e.g. '1G'). */
    size: z
      .string()
      .regex(/^\d+[KMGT]?$/i)
      .optional(),
    format: z.enum(['qcow2', 'raw']).optional(),
    bus: z.enum(['virtio', 'ide', 'scsi']).optional(),
    /** Where the overlay lives: the session's dir on this host, or the cluster's shared pool. */
    pool: z.enum(['local', 'shared']).optional(),
    readOnly: z.boolean().optional(),
    /** QEMU drive id / node name (default disk0, disk1...). */
    id: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9_-]*$/)
      .optional(),
  })
  .refine(d => [d.image, d.path, d.size, d.memtest, d.volume].filter(x => x !== undefined).length === 1, {
    message: 'a disk needs exactly one of "image", "path", "size", "memtest" or "volume"',
  })

export const nicSpec = z
  .strictObject({
    /**
     * 'user': QEMU's user-mode network restricted to the host (no outside traffic); 'tap': an existing tap;
     * 'bridge': a new tap on a guest network's bridge (see the `network` service), removed with the VM.
     */
    mode: z.enum(['user', 'tap', 'bridge']).default('user'),
    /** Tap interface name (mode 'tap'). */
    ifname: z.string().min(1).max(15).optional(),
    /** The guest network's bridge on this host (mode 'bridge'): vtb + the VNI in 6 hex digits. */
    bridge: z
      .string()
      .regex(/^vtb[0-9a-f]{6}$/, "a guest network's bridge, vtb + 6 hex digits")
      .optional(),
    /** MTU the tiny guest sets on this NIC (guest networks: the underlay's minus the VXLAN overhead). */
    mtu: z.number().int().min(576).max(65535).optional(),
    mac: z
      .string()
      .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i)
      .optional(),
    /** Address the tiny guest configures on this NIC, e.g. '10.0.0.2/24'. */
    ip: z
      .string()
      .regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/)
      .optional(),
    gateway: z
      .string()
      .regex(/^\d+\.\d+\.\d+\.\d+$/)
      .optional(),
  })
  .refine(n => n.mode !== 'bridge' || n.bridge !== undefined, { message: "mode 'bridge' needs `bridge`" })

export const vmSpec = z
  .strictObject({
    name: vmName,
    /** Boot this image's kernel and initramfs (default 'tiny' unless kernel or disks-only boot is given). */
    image: z.string().min(1).optional(),
    machine: z.string().min(1).max(64).optional(),
    accel: z.enum(['auto', 'kvm', 'tcg']).optional(),
    cpus: z.number().int().min(1).max(64).optional(),
    memory: memorySize.optional(),
    disks: z.array(diskSpec).max(16).optional(),
    nics: z.array(nicSpec).max(8).optional(),
    /** Extra virtio-console ports, each a unix socket in the VM's directory. */
    consoles: z
      .array(z.strictObject({ name: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]*$/) }))
      .max(8)
      .optional(),
    kernel: absolutePath.optional(),
    initrd: absolutePath.optional(),
    /** Appended to the kernel command line. */
    append: z.string().max(4096).optional(),
    /** Firmware file for -bios (boot from disk). */
    firmware: absolutePath.optional(),
    /** Start with the CPUs stopped (resume later). */
    paused: z.boolean().optional(),
    /** Wait for a migration stream: 'defer' (then migrate-incoming over QMP) or a URI like 'tcp:0:4444'. */
    incoming: z.string().min(1).optional(),
    /**
     * What "ready" means: the tiny guest's command channel, qemu-guest-agent answering (default for the
     * 'debian' image; use it for your own disk that runs the agent), a console regex, or nothing.
     */
    ready: z
      .union([
        z.literal('channel'),
        z.literal('agent'),
        z.literal('none'),
        z.strictObject({ console: z.string().min(1) }),
      ])
      .optional(),
    /** Milliseconds to wait for ready (default 60 s; 300 s when waiting for qemu-guest-agent). */
    readyTimeoutMs: z.number().int().min(100).max(3_600_000).optional(),
    /** Exit QEMU instead of rebooting the guest (default true). */
    noReboot: z.boolean().optional(),
    /** The cluster's shared storage pool on this host, for disks with pool 'shared' (createVm fills it in). */
    sharedPool: absolutePath.optional(),
    /** Extra QEMU arguments (escape hatch; no shell involved). */
    extraArgs: z.array(z.string().max(4096)).max(200).optional(),
    /**
     * Start from a warm template of this spec in the host's template cache instead of booting (guests booted
     * from a vt image; others boot). The first VM of a spec on a host boots once more to make the template.
     */
    template: z.boolean().optional(),
    /** Start as a clone of snapshot `snapshot` of VM `vm` (of this session, on this host). */
    from: z.strictObject({ vm: vmName, snapshot: snapshotName }).optional(),
  })
  .refine(s => !(s.image && s.kernel), { message: 'give "image" or "kernel", not both' })
  .refine(s => !(s.initrd && !s.kernel), { message: '"initrd" needs "kernel"' })

/** How a VM gets its capacity on the host (not part of the spec: a migration's destination books its own). */
export const vmCreateOptions = z.strictObject({
  /** A booking of this session (`session.reserve`) the VM takes over instead of booking anew. */
  reservation: z.string().min(1).max(64).optional(),
  /** How long to wait for capacity to free up (default 0: fail at once, naming what is free). */
  capacityTimeoutMs: z.number().int().min(0).max(3_600_000).optional(),
})

export type VmCreateOptions = z.input<typeof vmCreateOptions>

export type VmSpec = z.input<typeof vmSpec>
export type VmSpecParsed = z.output<typeof vmSpec>
export type DiskSpec = z.input<typeof diskSpec>
export type NicSpec = z.input<typeof nicSpec>

export type VmStatus =
  | 'starting'
  | 'paused'
  | 'running'
  | 'inmigrate'
  | 'postmigrate'
  | 'shutdown'
  | 'stopped'
  | 'exited'

export interface VmInfo {
  name: string
  host: string
  pid: number
  status: VmStatus
  accel: 'kvm' | 'tcg'
  memoryMiB: number
  cpus: number
  /** The VM's directory on the host: sockets, overlays, logs. */
  dir: string
  qmpSocket: string
  consoleLog: string
  /** Extra console sockets by name. */
  consoles: Record<string, string>
  disks: { id: string; file: string; format: string; overlayOf?: string }[]
  /** QEMU argv (for reports and reproduction). */
  argv: string[]
  startedAt: number
  /** Milliseconds from spawn to ready (undefined while not ready or for ready: 'none'). */
  readyMs?: number
  exitCode?: number | null
  exitSignal?: string | null
  /** How it started when not booted: restored from the host's template cache or from a snapshot. */
  restored?: VmRestoreInfo
}

export interface VmRestoreInfo {
  from: 'template' | 'snapshot'
  /** The template's key or the snapshot's name. */
  name: string
  /** This start made the template first (booted it, saved it). */
  built?: boolean
  /** Milliseconds from the start of QEMU to the guest answering, identity applied. */
  ms: number
  /** Where the time went on the host (QEMU up with QMP, state loaded, identity applied and answered). */
  phases?: RestorePhases
  /** A restore in place that used the QEMU the agent had spawned for it in advance (QEMU up: 0 ms). */
  prestarted?: boolean
}

export interface RestorePhases {
  /** A restore in place: the VM's old QEMU stopped (and a spare QEMU still starting up, ready). */
  stopMs?: number
  qemuMs: number
  loadMs: number
  identityMs: number
}

export interface VmSnapshotInfo {
  vm: string
  name: string
  host: string
  /** Size of the saved live state (RAM and devices). */
  stateBytes: number
  /** Milliseconds the guest was paused while saving. */
  pausedMs: number
  /** Milliseconds the whole snapshot took (the guest runs again while its RAM is moved into a file). */
  ms: number
}

export const guestExecRequest = z.strictObject({
  /** Shell command run by the guest's /bin/sh (sourced in a subshell, cwd /root). */
  command: z
    .string()
    .min(1)
    .max(256 * 1024),
  env: envSchema.optional(),
  /** Milliseconds (default 60 s); the guest process tree is killed when it passes. */
  timeoutMs: z.number().int().min(1).max(86_400_000).optional(),
})

export type GuestExecRequest = z.input<typeof guestExecRequest>

export interface GuestExecResult {
  stdout: Uint8Array
  stderr: Uint8Array
  exitCode: number
  durationMs: number
}

export const guestReadFileRequest = z.strictObject({
  path: absolutePath,
  /** Refuse files larger than this (default 64 MiB). */
  maxBytes: z
    .number()
    .int()
    .min(0)
    .max(256 * 1024 * 1024)
    .optional(),
  timeoutMs: z.number().int().min(1).max(86_400_000).optional(),
})

export const guestWriteFileRequest = z.strictObject({
  path: absolutePath,
  data: bytes,
  /** Permission bits, e.g. 0o755. */
  mode: z.number().int().min(0).max(0o7777).optional(),
  timeoutMs: z.number().int().min(1).max(86_400_000).optional(),
})

export interface VmConsoleEvent {
  name: string
  data: string
}

export interface VmStateEvent {
  name: string
  status: VmStatus
  /** Why, for exits: exit code / signal and the tail of QEMU's stderr. */
  reason?: string
}

/** A QMP event of VM `name`. */
export interface VmQmpEvent extends QmpEvent {
  name: string
}

export type { VmQmpCall } from './qmp.ts'

const name = vmName

export const vm = defineService(
  'vm',
  {
    /**
     * Creates and starts a VM; resolves once it is ready (see `ready`). The VM books its memory and cpus on the
     * host first (released when it is destroyed or its QEMU exits), waiting up to `capacityTimeoutMs` (default
     * 0) when they are not free, or takes over the session's `reservation`.
     */
    create: call(vmSpec, vmCreateOptions.optional()).returns<VmInfo>(),
    info: call(name).returns<VmInfo>(),
    list: call().returns<VmInfo[]>(),
    exec: call(name, guestExecRequest).returns<GuestExecResult>(),
    /** A file in the guest, through its command channel (the tiny guest's, or qemu-guest-agent). */
    readFile: call(name, guestReadFileRequest).returns<Uint8Array>(),
    writeFile: call(name, guestWriteFileRequest).returns<void>(),
    pause: call(name).returns<void>(),
    resume: call(name).returns<void>(),
    /** ACPI powerdown, then kill after the timeout (default 10 s). Resolves when QEMU has exited. */
    shutdown: call(
      name,
      z.strictObject({ timeoutMs: z.number().int().min(0).max(600_000).optional() }).optional(),
    ).returns<VmInfo>(),
    /** Saves live state and disks as snapshot `snapshot` (the guest pauses meanwhile, then runs on). */
    snapshot: call(name, snapshotName).returns<VmSnapshotInfo>(),
    /** Puts the VM back into snapshot `snapshot` (a new QEMU from the saved state; clock and RNG refreshed). */
    restore: call(name, snapshotName).returns<VmInfo>(),
    /** Kills QEMU now and removes the VM's files. */
    destroy: call(name).returns<void>(),
    /** QMP pass-through, typed by the command name on the controller (VmQmpCall). */
    qmp: call(name, z.string().min(1).max(128), z.record(z.string(), z.unknown()).optional()).signature<VmQmpCall>(),
    /** Waits for a QMP event (matching `data` fields when given). */
    waitForQmpEvent: call(
      name,
      z.strictObject({
        event: z.string().min(1),
        data: z.record(z.string(), z.unknown()).optional(),
        timeoutMs: z.number().int().min(0).max(3_600_000).optional(),
        sinceStart: z.boolean().optional(),
      }),
    ).returns<VmQmpEvent>(),
    /** Serial console text: the last `tailBytes` (default all, up to 4 MiB). */
    console: call(name, z.strictObject({ tailBytes: z.number().int().min(0).optional() }).optional()).returns<string>(),
    /** Writes bytes to the serial console (as if typed). */
    consoleWrite: call(name, bytes).returns<void>(),
    /** The QMP transcript as text. */
    transcript: call(name).returns<string>(),
  },
  {
    console: event<VmConsoleEvent>(),
    state: event<VmStateEvent>(),
    qmp: event<VmQmpEvent>(),
    /** Slow preparation steps, e.g. building the tiny image on first use. */
    progress: event<{ message: string }>(),
  },
)
