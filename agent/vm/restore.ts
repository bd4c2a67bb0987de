// Starting VMs from saved state: the session's snapshots (by VM instance and name, in the session's dir, so
// the session's reaper removes them) and the steps a restore takes after QEMU loaded the state: run the
// guest, wait for its command channel to answer again, give it its identity.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import type { RestorePhases, VmInfo, VmRestoreInfo, VmSnapshotInfo, VmSpecParsed } from '../../src/protocol/vm.ts'
import { portSocket, type ResolvedDisk } from './argv.ts'
import { applyIdentity } from './identity.ts'
import { Machine, type MachineOptions, readyMode, VmError } from './machine.ts'
import { moveRamToFile } from './ramFile.ts'
import { disksFrom, incomingFrom, ramFrom, runLoaded, type SavedVm, saveVm } from './snapshot.ts'
import { prepareSpare, type Spare, takeSpare } from './spare.ts'

/** A VM of a session (VmManager's record of it). */
export interface VmEntry {
  machine: Machine
  disks: VmInfo['disks']
  consoles: Record<string, string>
  tracked: string[]
  /** Taps made for NICs on guest networks (deleted with the VM). */
  taps: string[]
  /** How this QEMU was started: a restore starts the next one the same way. */
  start: MachineOptions
  /** The tracking record of the current QEMU process (replaced when a restore starts a new one). */
  proc: { id?: string; swapping: boolean }
  /** This VM's instance (its snapshots), and the instances whose snapshots its disks are built on. */
  instance: string
  ancestors: Set<string>
  restored?: VmRestoreInfo
  restores: number
  /** The QEMU spawned in advance for restoring the latest snapshot (spare.ts). */
  spare?: Spare
  /** Gives the VM's capacity back (idempotent). */
  release: () => void
}

export interface SnapshotContext {
  host: string
  store: SnapshotStore
  sharedPool?: string
  track?(r: { kind: 'process'; pid: number; group: boolean; label: string }): Promise<string>
  untrack?(id: string): Promise<void>
}

export function diskInfo(disks: ResolvedDisk[]): VmInfo['disks'] {
  return disks.map(d => ({
    id: d.id,
    file: d.file,
    format: d.format,
    ...(d.overlayOf ? { overlayOf: d.overlayOf } : {}),
  }))
}
/** Saves the VM's live state and disks as snapshot `snap`; the guest runs on afterwards. */
export async function snapshotVm(e: VmEntry, snap: string, ctx: SnapshotContext): Promise<VmSnapshotInfo> {
  if (!e.machine.alive) throw new VmError(`${e.machine.label}: cannot snapshot: ${e.machine.exitReason()}`)
  const inPool = (d: ResolvedDisk, i: number) =>
    d.protocol || e.start.spec.disks?.[i]?.volume || d.file.startsWith(`${ctx.sharedPool ?? '//'}/`)
  if (e.start.disks.some((d, i) => !d.readOnly && inPool(d, i))) {
    throw new VmError(
      `${e.machine.label}: snapshots of disks in a shared or network pool are not supported (snapshot the volume itself)`,
      'UNSUPPORTED',
    )
  }
  const dir = ctx.store.newDir(e.instance, snap)
  try {
    const t0 = performance.now()
    const stream = await saveVm(e.machine, e.start.disks, dir, { copyDisks: true, resume: true })
    const saved = await moveRamToFile(stream, e.start, ctx)
    ctx.store.add(e.instance, snap, saved)
    prepareSpare(e, snap, saved, ctx, spawnFrom)
    return {
      vm: e.machine.name,
      name: snap,
      host: ctx.host,
      stateBytes: stream.stateBytes,
      pausedMs: saved.pausedMs,
      ms: Math.round(performance.now() - t0),
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/** Replaces the VM's QEMU with a new one started from snapshot `snap` (same MACs and name; clock, RNG new). */
export async function restoreVm(e: VmEntry, snap: string, ctx: SnapshotContext): Promise<void> {
  const saved = ctx.store.get(e.instance, snap, e.machine.label)
  const old = e.machine
  const t0 = performance.now()
  // The old QEMU's exit is not the VM's: keep it from the controller, and stop tracking it once it is gone.
  // It goes while a spare still starting finishes its start-up.
  e.proc.swapping = true
  const [spare] = await Promise.all([takeSpare(e, snap, saved, ctx), old.destroy()])
  if (e.proc.id) {
    await ctx.untrack?.(e.proc.id).catch(() => {})
    // In place: the start options' spawn hook keeps pushing to this array.
    const at = e.tracked.indexOf(e.proc.id)
    if (at >= 0) e.tracked.splice(at, 1)
  }
  e.proc.swapping = false
  const stopMs = Math.round(performance.now() - t0)
  const oldTops = e.start.disks.filter(d => !d.readOnly).map(d => d.file)
  const removeOldTops = () => {
    for (const f of oldTops) if (f.startsWith(`${e.start.dir}/`)) rmSync(f, { force: true })
  }
  let started: { machine: Machine; phases: RestorePhases }
  if (spare) {
    // The spare becomes the VM's QEMU: its sockets, disks, process record and states are the VM's from now on.
    const oldSockDir = e.start.sockDir
    spare.adopted = true
    removeOldTops()
    e.start = spare.start
    e.proc.id = spare.procId
    e.tracked.push(...spare.tracked)
    rmSync(oldSockDir, { recursive: true, force: true })
    e.consoles = Object.fromEntries(
      (e.start.spec.consoles ?? []).map((c, i) => [c.name, portSocket(e.start.sockDir, i)]),
    )
    started = await finishFrom((await spare.machine) as Machine, e.start, saved, false, 0)
  } else {
    const disks = disksFrom(saved, e.start.dir, `r${++e.restores}`)
    removeOldTops()
    e.start = { ...e.start, disks }
    started = await startFrom(e.start, saved, false)
  }
  e.machine = started.machine
  e.disks = diskInfo(e.start.disks)
  e.restored = {
    from: 'snapshot',
    name: snap,
    ms: Math.round(performance.now() - t0),
    phases: { stopMs, ...started.phases },
    ...(spare ? { prestarted: true } : {}),
  }
  // The next restore is most likely of the same snapshot again (a reset between steps).
  prepareSpare(e, snap, saved, ctx, spawnFrom)
}

/** A VM instance's snapshots; clones depend on their ancestors' snapshot files (disk backing chains). */
export class SnapshotStore {
  private readonly byInstance = new Map<string, Map<string, SavedVm>>()
  private counter = 0

  constructor(private readonly root: string) {}

  /** A new directory for a snapshot (names may be reused: an older one may still back a clone's disk). */
  newDir(instance: string, name: string): string {
    const dir = join(this.root, instance, `${name}.${++this.counter}`)
    mkdirSync(dir, { recursive: true })
    return dir
  }

  add(instance: string, name: string, saved: SavedVm): void {
    let m = this.byInstance.get(instance)
    if (!m) this.byInstance.set(instance, (m = new Map()))
    m.set(name, saved)
  }

  get(instance: string, name: string, label: string): SavedVm {
    const saved = this.byInstance.get(instance)?.get(name)
    if (!saved) {
      const known = [...(this.byInstance.get(instance)?.keys() ?? [])]
      throw new VmError(
        `${label} has no snapshot ${JSON.stringify(name)} ` +
          (known.length ? `(its snapshots: ${known.join(', ')})` : '(take one first with vm.snapshot(name))'),
        'ENOENT',
      )
    }
    return saved
  }

  /** Removes the snapshots of instances that are gone and that no live VM descends from. */
  collect(live: { instance: string; ancestors: ReadonlySet<string> }[]): void {
    const needed = new Set<string>()
    for (const l of live) {
      needed.add(l.instance)
      for (const a of l.ancestors) needed.add(a)
    }
    for (const instance of [...this.byInstance.keys()]) {
      if (needed.has(instance)) continue
      this.byInstance.delete(instance)
      rmSync(join(this.root, instance), { recursive: true, force: true })
    }
    if (this.byInstance.size === 0 && existsSync(this.root)) rmSync(this.root, { recursive: true, force: true })
  }
}

export interface FinishOptions {
  hostname: string
  nics: NonNullable<VmSpecParsed['nics']>
  /** The MACs the saved state carries, per NIC. */
  savedMacs: string[]
  /** A clone of another machine (new MACs and addresses), not the same VM going back in time. */
  clone: boolean
  timeoutMs: number
}

export interface CloneSource {
  saved: SavedVm
  restored: Omit<VmRestoreInfo, 'ms'>
  /** Instances whose snapshot files the clone's disks are built on. */
  ancestors: Set<string>
}

/** Snapshot `snap` of `parent` as the source of a new VM. */
export function snapshotSource(parent: VmEntry, snap: string, store: SnapshotStore, host: string): CloneSource {
  const saved = store.get(parent.instance, snap, `VM ${parent.machine.name} on host ${host}`)
  return {
    saved,
    restored: { from: 'snapshot', name: snap },
    ancestors: new Set([...parent.ancestors, parent.instance]),
  }
}

/**
 * Starts a new QEMU from `saved` with the VM's options (its disks must already be overlays on the saved ones):
 * loads the state (a template's or converted snapshot's RAM is mapped copy-on-write, only the devices load),
 * runs the guest, gives it its identity (on the tiny guest that answer is also its readiness). A clone also
 * shows the saved console log (the boot messages of the template) and gets its own MACs (filled in the spec
 * by the caller) and addresses. Returns the machine and where the time went.
 */
export async function startFrom(
  start: MachineOptions,
  saved: SavedVm,
  clone: boolean,
): Promise<{ machine: Machine; phases: RestorePhases }> {
  const cpus = start.spec.cpus ?? 1
  if (saved.memoryMiB !== start.memoryMiB || saved.cpus !== cpus) {
    throw new VmError(
      `VM ${start.spec.name} on host ${start.host}: its saved state is of a VM with ${saved.memoryMiB} MiB and ` +
        `${saved.cpus} CPU(s), it asks for ${start.memoryMiB} MiB and ${cpus}: give it the same memory and cpus`,
      'BAD_REQUEST',
    )
  }
  if (clone) {
    copyFileSync(saved.consoleLog, join(start.dir, 'console.log'))
    start.onConsole?.(readFileSync(saved.consoleLog, 'utf8'))
  }
  const t = performance.now()
  const m = await spawnFrom(start, saved)
  return finishFrom(m, start, saved, clone, Math.round(performance.now() - t))
}

/** Spawns the QEMU that will load `saved`: waiting (-incoming defer) when the RAM is a file, else loading. */
export function spawnFrom(start: MachineOptions, saved: SavedVm): Promise<Machine> {
  const ram = ramFrom(saved)
  // x-ignore-shared has no command-line property in QEMU 7.2: the load waits until QMP has set it.
  return Machine.start({
    ...start,
    ram,
    identityFirst: readyMode(start.spec) === 'channel',
    spec: { ...start.spec, incoming: ram ? 'defer' : incomingFrom(saved) },
  })
}

/** Loads `saved` into the QEMU spawnFrom made, runs the guest, gives it its identity. */
export async function finishFrom(
  m: Machine,
  start: MachineOptions,
  saved: SavedVm,
  clone: boolean,
  qemuMs: number,
): Promise<{ machine: Machine; phases: RestorePhases }> {
  let t = performance.now()
  const lap = () => {
    const now = performance.now()
    const ms = Math.round(now - t)
    t = now
    return ms
  }
  const ram = ramFrom(saved)
  const incoming = incomingFrom(saved)
  try {
    const timeoutMs = start.spec.readyTimeoutMs ?? 60_000
    if (ram) {
      const qmp = m.requireQmp()
      await qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'x-ignore-shared', state: true }],
      })
      await qmp.execute('migrate-incoming', { uri: incoming })
    }
    await runLoaded(m, timeoutMs)
    const loadMs = lap()
    // A guest ready on its console (the memtest guest, firmware guests) has no command channel to apply an
    // identity through, and nothing in it that knows one: it runs on as saved.
    const mode = readyMode(start.spec)
    if (mode !== 'channel' && mode !== 'agent') {
      await m.waitReady(timeoutMs)
      return { machine: m, phases: { qemuMs, loadMs, identityMs: lap() } }
    }
    // The tiny guest's identity answer proves its loop ready; other guests first wait for their agent.
    if (!m.guest) await m.waitReady(timeoutMs)
    await applyIdentity(m, {
      hostname: start.spec.name,
      nics: (start.spec.nics ?? []).map((spec, i) => ({ spec, from: saved.macs[i] ?? '' })),
      network: clone,
    })
    // Answered already (the loop answered the ping sent at connect before the identity): sets readyMs.
    await m.waitReady(timeoutMs)
    return { machine: m, phases: { qemuMs, loadMs, identityMs: lap() } }
  } catch (err) {
    // A stream QEMU cannot load makes it exit: its own words say why (stderr), not the closed QMP socket.
    const exited = await Promise.race([m.exited.then(() => true), delay(2000).then(() => false)])
    await m.destroy()
    if (exited)
      throw new VmError(`${m.label}: QEMU exited while loading the saved state: ${m.exitReason()}`, 'RESTORE_FAILED')
    throw err
  }
}
