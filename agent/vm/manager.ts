// The VMs of one session on one host: validates a spec against the host (memory, accelerator, files),
// prepares disks (qcow2 overlays on cached bases), starts a Machine, and records what it created through
// the hooks so the session's reaper can remove it whatever happens to this process.

import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { QmpEvent } from '../../src/protocol/qmp.ts'
import type { VolumeRef } from '../../src/protocol/storage.ts'
import {
  type VmCreateOptions,
  type VmInfo,
  type VmSnapshotInfo,
  type VmSpec,
  type VmSpecParsed,
  type VmStatus,
  vmSpec,
} from '../../src/protocol/vm.ts'
import { ensureImage } from '../image/index.ts'
import { buildMemtestImage } from '../memtest/image.ts'
import { createTap, deleteLink } from '../net/tap.ts'
import type { SyncEndpoint } from '../sync/forwarder.ts'
import { probeAccel } from './accel.ts'
import { portSocket, type ResolvedDisk } from './argv.ts'
import { checkExtraArgs, checkMigrationUri, checkQmpCommand, type HostPathPolicy, realRoot } from './hostPaths.ts'
import { randomMac } from './identity.ts'
import { Machine, type MachineOptions, qemuImg, VmError } from './machine.ts'
import { netArgs } from './netArgs.ts'
import {
  diskInfo,
  restoreVm,
  type SnapshotContext,
  SnapshotStore,
  snapshotSource,
  snapshotVm,
  startFrom,
  type VmEntry,
} from './restore.ts'
import { formatMiB, toMiB } from './size.ts'
import { disksFrom } from './snapshot.ts'
import { makeSocketDir } from './sockets.ts'
import { discardSpare } from './spare.ts'
import { type TemplateDeps, templateSource } from './templateBuild.ts'

export interface VmHooks {
  /** Records a resource for the reaper; returns its id. */
  track?(
    r:
      | { kind: 'process'; pid: number; group: boolean; label: string }
      | { kind: 'path'; path: string; label: string }
      | { kind: 'link'; name: string; label: string },
  ): Promise<string>
  untrack?(id: string): Promise<void>
  /**
   * Books the VM's memory and cpus on the host (waiting or taking over a reservation as `options` say); returns
   * the release, called once when the VM is destroyed, its QEMU exits, or its creation fails.
   */
  book?(name: string, want: { memoryBytes: number; cpus: number }, options: VmCreateOptions): Promise<() => void>
  onConsole?(name: string, text: string): void
  onState?(name: string, status: VmStatus, reason?: string): void
  onQmpEvent?(name: string, ev: QmpEvent): void
}

export interface VmManagerOptions {
  /** This host's name, used in every error. */
  host: string
  /** Where VM directories go (the session's dir). */
  dir: string
  /** Directories disk/kernel paths must be inside (besides the image cache). Empty: no restriction. */
  roots?: string[]
  /** The cluster's shared storage pool, for disks with pool 'shared'. */
  sharedPool?: string
  hooks?: VmHooks
  /** Report image build progress (first use builds the tiny image). */
  progress?: (message: string) => void
  /** A confined agent: no raw QEMU arguments, no exec: migration URIs, no HMP (agent/vm/hostPaths.ts). */
  confined?: boolean
  /** Answers `vt-sync` in guests (the session's forwarder to its controller). */
  sync?: SyncEndpoint
  /** Finds a storage pool's volume for a `{ volume }` disk (the storage service's pools, confined). */
  resolveVolume?: (ref: VolumeRef) => Promise<{ filename: string; format: string; blockdev: Record<string, unknown> }>
}

type Entry = VmEntry

let instances = 0

const MiB = 1024 * 1024

export class VmManager {
  private readonly vms = new Map<string, Entry>()
  private readonly starting = new Set<string>()

  private readonly policy: HostPathPolicy
  private readonly snapshots: SnapshotStore
  private readonly snapCtx: SnapshotContext
  private readonly templateDeps: TemplateDeps

  constructor(private readonly opts: VmManagerOptions) {
    this.policy = { roots: (opts.roots ?? []).map(realRoot), confined: opts.confined ?? false }
    this.snapshots = new SnapshotStore(join(opts.dir, 'snapshots'))
    const { hooks, sharedPool, progress } = opts
    this.snapCtx = { host: opts.host, store: this.snapshots, sharedPool, track: hooks?.track, untrack: hooks?.untrack }
    const prepareDisks = (s: VmSpecParsed, dir: string) =>
      this.prepareDisks(s, dir, `the template for VM ${s.name} on host ${opts.host}`)
    this.templateDeps = { host: opts.host, prepareDisks, hooks, progress }
  }

  /** Checks a QMP command from a controller for host paths outside the roots (and HMP when confined). */
  checkQmp(name: string, command: string, args: Record<string, unknown> | undefined): void {
    checkQmpCommand(command, args, `VM ${name} on host ${this.host}`, this.policy)
  }

  get host(): string {
    return this.opts.host
  }

  /** Creates and starts a VM; resolves when it is ready. */
  async create(input: VmSpec, capacity: VmCreateOptions = {}): Promise<VmInfo> {
    const parsed = vmSpec.safeParse(input)
    if (!parsed.success) {
      const issues = parsed.error.issues.map(i => `${i.path.join('.') || 'spec'}: ${i.message}`).join('; ')
      throw new VmError(`invalid VM spec on host ${this.host}: ${issues}`, 'BAD_REQUEST')
    }
    const spec = parsed.data
    const label = `VM ${spec.name} on host ${this.host}`
    checkExtraArgs(spec.extraArgs ?? [], label, this.policy)
    if (spec.incoming) checkMigrationUri(spec.incoming, `${label}: incoming`, this.policy)
    if (this.vms.has(spec.name) || this.starting.has(spec.name)) {
      throw new VmError(`${label} already exists in this session: pick another name`, 'EXISTS')
    }
    this.starting.add(spec.name)
    const tracked: string[] = []
    const taps: string[] = []
    const dir = join(this.opts.dir, 'vms', spec.name)
    let sockDir: string | undefined
    let release = () => {}
    try {
      const memoryMiB = toMiB(spec.memory, 256)
      const totalMiB = hostMemoryMiB()
      if (memoryMiB > totalMiB) {
        throw new VmError(
          `${label}: memory ${formatMiB(memoryMiB)} is more than the host has (${formatMiB(totalMiB)} in total); ` +
            'ask for less with memory: "256M"',
          'MEMORY',
        )
      }
      if (this.opts.hooks?.book) {
        const give = await this.opts.hooks.book(
          spec.name,
          { memoryBytes: memoryMiB * MiB, cpus: spec.cpus ?? 1 },
          capacity,
        )
        let given = false
        release = () => {
          if (given) return
          given = true
          give()
        }
      }
      const accel = await this.chooseAccel(spec, label)
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(dir, { recursive: true })
      if (this.opts.hooks?.track) tracked.push(await this.opts.hooks.track({ kind: 'path', path: dir, label }))
      // Sockets go to a short directory of their own: their paths must not grow with the name or the state dir.
      sockDir = makeSocketDir()
      if (this.opts.hooks?.track)
        tracked.push(await this.opts.hooks.track({ kind: 'path', path: sockDir, label: `${label} (sockets)` }))

      // What to boot: an image's kernel + initramfs (default tiny), an explicit kernel, or firmware + disks.
      let kernel = spec.kernel && this.checkPath(spec.kernel, 'kernel', label)
      let initrd = spec.initrd && this.checkPath(spec.initrd, 'initrd', label)
      let append = spec.append
      const bootsDisk = !spec.image && !spec.kernel && (spec.disks?.length ?? 0) > 0 && spec.disks?.every(d => !d.image)
      if (spec.firmware) this.checkPath(spec.firmware, 'firmware', label)
      let diskSpecs = spec
      if (!kernel && !bootsDisk && !spec.firmware) {
        const image = await ensureImage(spec.image ?? 'tiny', { progress: this.opts.progress })
        if (memoryMiB < image.minMemoryMiB) {
          throw new VmError(
            `${label}: memory ${formatMiB(memoryMiB)} is too little for the ${image.name} image, which needs at ` +
              `least ${formatMiB(image.minMemoryMiB)}; ask for memory: "${image.minMemoryMiB}M" or more`,
            'MEMORY',
          )
        }
        kernel = image.kernel
        initrd = image.initrd
        // systemd.hostname: the debian guest's; vt.hostname and the NIC words: the tiny guest's and vt-net's.
        const host = image.name === 'debian' ? [`systemd.hostname=${spec.name}`] : []
        append = [image.append, 'panic=-1', `vt.hostname=${spec.name}`, ...host, netArgs(spec), spec.append]
          .filter(Boolean)
          .join(' ')
        // The debian image boots from its root filesystem: an overlay of it, first so that it is /dev/vda.
        if (image.name === 'debian') {
          if (spec.disks?.some(d => d.id === 'root'))
            throw new VmError(
              `${label}: disk id 'root' is the debian image's root disk: pick another id`,
              'BAD_REQUEST',
            )
          diskSpecs = { ...spec, disks: [{ image: image.name, id: 'root' }, ...(spec.disks ?? [])] }
        }
      }
      // A clone starts from saved state (a snapshot of another VM here, or the host's template of this spec).
      const source = spec.from
        ? snapshotSource(this.entry(spec.from.vm), spec.from.snapshot, this.snapshots, this.host)
        : spec.template && kernel && !spec.kernel
          ? await templateSource(spec, { kernel, initrd, append, memoryMiB, accel }, this.templateDeps)
          : undefined
      const saved = source?.saved
      const disks = saved ? disksFrom(saved, dir, 'r0') : await this.prepareDisks(diskSpecs, dir, label)
      let nics = await this.prepareNics(spec, label, tracked, taps)
      // A clone gets its own MAC for every NIC (the saved one belongs to the template).
      if (saved) nics = nics?.map(n => (n.mac ? n : { ...n, mac: randomMac() }))
      const proc: Entry['proc'] = { swapping: false }
      const start: MachineOptions = {
        host: this.host,
        dir,
        sockDir,
        spec: { ...spec, nics },
        accel,
        memoryMiB,
        kernel,
        initrd,
        append,
        disks,
        sync: this.opts.sync,
        onConsole: text => this.opts.hooks?.onConsole?.(spec.name, text),
        onState: (status, reason) => {
          // The old QEMU of a restore in place exits: not the VM's exit (it keeps its capacity).
          if (proc.swapping) return
          // QEMU is gone (crash, kill, guest power-off): its memory is free again, the VM's entry stays.
          if (status === 'exited') release()
          this.opts.hooks?.onState?.(spec.name, status, reason)
        },
        onQmpEvent: ev => this.opts.hooks?.onQmpEvent?.(spec.name, ev),
        // Track the process as soon as it exists (before ready), so a crash now still reaps it.
        onSpawn: async pid => {
          if (this.opts.hooks?.track) {
            proc.id = await this.opts.hooks.track({ kind: 'process', pid, group: true, label })
            tracked.push(proc.id)
          }
        },
      }
      const started = saved ? await startFrom(start, saved, true) : undefined
      const machine = started?.machine ?? (await Machine.start(start))
      const consoles: Record<string, string> = {}
      for (const [i, c] of (spec.consoles ?? []).entries()) consoles[c.name] = portSocket(sockDir, i)
      const entry: Entry = {
        machine,
        consoles,
        tracked,
        taps,
        release,
        disks: diskInfo(disks),
        start,
        proc,
        instance: `${spec.name}-${++instances}`,
        ancestors: source?.ancestors ?? new Set(),
        restores: 0,
        ...(source && started
          ? { restored: { ...source.restored, ms: Math.round(machine.readyMs ?? 0), phases: started.phases } }
          : {}),
      }
      this.vms.set(spec.name, entry)
      return machine.info(this.host, entry)
    } catch (err) {
      release()
      for (const id of tracked.reverse()) await this.opts.hooks?.untrack?.(id).catch(() => {})
      for (const t of taps) await deleteLink(t)
      rmSync(dir, { recursive: true, force: true })
      if (sockDir) rmSync(sockDir, { recursive: true, force: true })
      throw err
    } finally {
      this.starting.delete(spec.name)
    }
  }

  get(name: string): Machine {
    return this.entry(name).machine
  }

  info(name: string): VmInfo {
    const e = this.entry(name)
    return e.machine.info(this.host, e)
  }

  list(): VmInfo[] {
    return [...this.vms.values()].map(e => e.machine.info(this.host, e))
  }

  async shutdown(name: string, timeoutMs?: number): Promise<VmInfo> {
    const e = this.entry(name)
    await e.machine.shutdown(timeoutMs)
    return e.machine.info(this.host, e)
  }

  /** Kills the VM and removes its files (and its snapshots, unless a live VM was cloned from them). */
  async destroy(name: string): Promise<void> {
    const e = this.entry(name)
    this.vms.delete(name)
    await discardSpare(e, this.snapCtx)
    await e.machine.destroy()
    rmSync(e.machine.dir, { recursive: true, force: true })
    rmSync(e.machine.sockDir, { recursive: true, force: true })
    for (const t of e.taps) await deleteLink(t)
    for (const id of e.tracked.reverse()) await this.opts.hooks?.untrack?.(id).catch(() => {})
    e.release()
    this.snapshots.collect([...this.vms.values()])
  }

  /** Saves the VM's live state and disks as snapshot `snap`; the guest runs on afterwards. */
  snapshot(name: string, snap: string): Promise<VmSnapshotInfo> {
    return snapshotVm(this.entry(name), snap, this.snapCtx)
  }

  /** Replaces the VM's QEMU with a new one started from snapshot `snap` (same MACs and name; clock, RNG new). */
  async restore(name: string, snap: string): Promise<VmInfo> {
    const e = this.entry(name)
    await restoreVm(e, snap, this.snapCtx)
    return e.machine.info(this.host, e)
  }

  /** NICs on a guest network get a tap on its bridge (recorded before QEMU opens it); QEMU sees a plain tap. */
  private async prepareNics(
    spec: VmSpecParsed,
    label: string,
    tracked: string[],
    taps: string[],
  ): Promise<VmSpecParsed['nics']> {
    const out: NonNullable<VmSpecParsed['nics']> = []
    for (const n of spec.nics ?? []) {
      if (n.mode !== 'bridge') {
        out.push(n)
        continue
      }
      const tap = await createTap(n.bridge as string)
      taps.push(tap)
      if (this.opts.hooks?.track) tracked.push(await this.opts.hooks.track({ kind: 'link', name: tap, label }))
      out.push({ ...n, mode: 'tap', ifname: tap })
    }
    return out
  }

  async destroyAll(): Promise<void> {
    await Promise.all([...this.vms.keys()].map(n => this.destroy(n).catch(() => {})))
  }

  private entry(name: string): Entry {
    const e = this.vms.get(name)
    if (!e) {
      const known = [...this.vms.keys()]
      throw new VmError(
        `no VM ${JSON.stringify(name)} on host ${this.host} in this session` +
          (known.length ? ` (VMs here: ${known.join(', ')})` : ' (none were created)'),
        'ENOENT',
      )
    }
    return e
  }

  private async chooseAccel(spec: VmSpecParsed, label: string): Promise<'kvm' | 'tcg'> {
    const want = spec.accel ?? 'auto'
    if (want === 'tcg') return 'tcg'
    const probe = await probeAccel()
    if (want === 'kvm' && !probe.kvm) {
      throw new VmError(
        `${label}: accel 'kvm' was requested but KVM does not work on host ${this.host}: ${probe.reason}. ` +
          "Use accel: 'auto' (picks what works) or 'tcg'.",
        'NO_KVM',
      )
    }
    return probe.kvm ? 'kvm' : 'tcg'
  }

  private checkPath(path: string, what: string, label: string): string {
    if (!existsSync(path)) throw new VmError(`${label}: ${what} ${path} does not exist`, 'ENOENT')
    const roots = this.opts.roots ?? []
    if (roots.length > 0) {
      const real = realpathSync(path)
      if (!roots.some(r => real === r || real.startsWith(r.endsWith('/') ? r : `${r}/`))) {
        throw new VmError(
          `${label}: ${what} ${path} is outside the agent's allowed roots (${roots.join(', ')})`,
          'OUTSIDE_ROOTS',
        )
      }
    }
    return path
  }

  private async prepareDisks(spec: VmSpecParsed, dir: string, label: string): Promise<ResolvedDisk[]> {
    const out: ResolvedDisk[] = []
    for (const [i, d] of (spec.disks ?? []).entries()) {
      const id = d.id ?? `disk${i}`
      const bus = d.bus ?? 'virtio'
      const readOnly = d.readOnly ?? false
      if (d.image) {
        const image = await ensureImage(d.image, { progress: this.opts.progress })
        let poolDir = dir
        if (d.pool === 'shared') {
          const pool = spec.sharedPool ? this.checkPath(spec.sharedPool, 'shared pool', label) : this.opts.sharedPool
          if (!pool) {
            throw new VmError(`${label}: disk ${id} asks for pool 'shared' but this cluster has no shared storage`)
          }
          poolDir = join(pool, 'overlays')
          mkdirSync(poolDir, { recursive: true })
        }
        const file = join(poolDir, d.pool === 'shared' ? `${spec.name}-${id}.qcow2` : `${id}.qcow2`)
        qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image.disk, file])
        // A shared overlay outlives this VM on this host (it migrates): the controller that made it removes it.
        out.push({ id, file, format: 'qcow2', bus, readOnly, overlayOf: image.disk })
      } else if (d.volume) {
        if (!this.opts.resolveVolume) throw new VmError(`${label}: disk ${id}: this agent has no storage pools`)
        const v = await this.opts.resolveVolume(d.volume)
        const format = v.format === 'raw' ? 'raw' : 'qcow2'
        if (v.format !== format) {
          throw new VmError(`${label}: disk ${id}: volume ${d.volume.name} is ${v.format}; VMs take qcow2 or raw`)
        }
        out.push({ id, file: v.filename, format, bus, readOnly, protocol: v.blockdev })
      } else if (d.memtest) {
        const file = await buildMemtestImage(d.memtest)
        out.push({ id, file, format: 'raw', bus, readOnly: true })
      } else if (d.size) {
        const file = join(dir, `${id}.${d.format ?? 'qcow2'}`)
        qemuImg(['create', '-q', '-f', d.format ?? 'qcow2', file, d.size])
        out.push({ id, file, format: d.format ?? 'qcow2', bus, readOnly })
      } else {
        const file = this.checkPath(d.path as string, `disk ${id}`, label)
        let format = d.format
        if (!format) {
          const info = JSON.parse(qemuImg(['info', '--output=json', file])) as { format: string }
          format = info.format === 'qcow2' ? 'qcow2' : 'raw'
        }
        out.push({ id, file, format, bus, readOnly })
      }
    }
    return out
  }
}

export function hostMemoryMiB(): number {
  const m = /^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))
  return m ? Math.floor(Number(m[1]) / 1024) : Number.POSITIVE_INFINITY
}
