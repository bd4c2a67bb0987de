// A spare QEMU for a VM's next restore: after a snapshot or a restore, the agent spawns, in the background, the
// QEMU that restoring that snapshot needs (its devices, the snapshot's RAM mapped copy-on-write, waiting with
// -incoming defer), so that `vm.restore()` skips QEMU's own start-up (~50 ms of a ~230 ms restore under TCG):
// the reset-between-steps pattern restores the same snapshot again and again. Only for VMs without tap NICs
// (a tap belongs to one QEMU at a time) and snapshots whose RAM is a file. Not booked in capacity: it holds
// little until it runs (its RAM is the snapshot's file, mapped, untouched).
import { rmSync } from 'node:fs'
import type { Machine, MachineOptions } from './machine.ts'
import { disksFrom, type SavedVm } from './snapshot.ts'
import { makeSocketDir } from './sockets.ts'

/** What a spare needs of the VM's record (restore.ts VmEntry). */
export interface SpareHolder {
  spare?: Spare
  start: MachineOptions
  restores: number
  machine: Machine
}

/** The session's records (the spare's process and socket dir are reaped with it). */
export interface SpareContext {
  track?(
    r: { kind: 'process'; pid: number; group: boolean; label: string } | { kind: 'path'; path: string; label: string },
  ): Promise<string>
  untrack?(id: string): Promise<void>
}

export interface Spare {
  snap: string
  saved: SavedVm
  /** The VM's start options with the spare's socket dir and disks (the VM's once it is adopted). */
  start: MachineOptions
  machine: Promise<Machine | undefined>
  /** The session's records of the spare's process and socket dir. */
  tracked: string[]
  procId?: string
  adopted: boolean
}

/** Spawns a spare for restoring `snap` (replacing any other); failures only mean no spare. */
export function prepareSpare(e: SpareHolder, snap: string, saved: SavedVm, ctx: SpareContext, spawn: SpareSpawn): void {
  void discardSpare(e, ctx)
  if (!saved.ram || !e.machine.alive) return
  if ((e.start.spec.nics ?? []).some(n => n.mode !== 'user')) return
  const base = e.start
  const label = `VM ${base.spec.name} on host ${base.host} (spare for a restore)`
  const sockDir = makeSocketDir()
  let disks: MachineOptions['disks']
  try {
    disks = disksFrom(saved, base.dir, `r${++e.restores}`)
  } catch {
    rmSync(sockDir, { recursive: true, force: true })
    return
  }
  const spare: Spare = { snap, saved, start: base, machine: Promise.resolve(undefined), tracked: [], adopted: false }
  spare.start = {
    ...base,
    sockDir,
    disks,
    // Until it is the VM's QEMU, its states and console are not the VM's.
    onState: (status, reason) => (spare.adopted ? base.onState?.(status, reason) : undefined),
    onQmpEvent: ev => (spare.adopted ? base.onQmpEvent?.(ev) : undefined),
    onConsole: text => (spare.adopted ? base.onConsole?.(text) : undefined),
    onSpawn: async pid => {
      const id = await ctx.track?.({ kind: 'process', pid, group: true, label })
      if (id) {
        spare.procId = id
        spare.tracked.push(id)
      }
    },
  }
  spare.machine = (async () => {
    const id = await ctx.track?.({ kind: 'path', path: sockDir, label: `${label} (sockets)` })
    if (id) spare.tracked.push(id)
    return spawn(spare.start, saved)
  })().catch(() => undefined)
  e.spare = spare
}

export type SpareSpawn = (start: MachineOptions, saved: SavedVm) => Promise<Machine>

/** The spare for restoring exactly `saved`, alive, taken out of the entry; undefined if there is none. */
export async function takeSpare(
  e: SpareHolder,
  snap: string,
  saved: SavedVm,
  ctx: SpareContext,
): Promise<Spare | undefined> {
  const spare = e.spare
  if (!spare) return undefined
  if (spare.snap !== snap || spare.saved !== saved) {
    await discardSpare(e, ctx)
    return undefined
  }
  e.spare = undefined
  const m = await spare.machine
  if (!m?.alive) {
    await dropSpare(spare, ctx)
    return undefined
  }
  return spare
}

/** Stops and removes the entry's spare (when the VM goes, or another snapshot makes it useless). */
export async function discardSpare(e: SpareHolder, ctx: SpareContext): Promise<void> {
  const spare = e.spare
  e.spare = undefined
  if (spare) await dropSpare(spare, ctx)
}

async function dropSpare(spare: Spare, ctx: SpareContext): Promise<void> {
  const m = await spare.machine
  await m?.destroy()
  rmSync(spare.start.sockDir, { recursive: true, force: true })
  for (const d of spare.start.disks) if (!d.readOnly) rmSync(d.file, { force: true })
  for (const id of spare.tracked.reverse()) await ctx.untrack?.(id).catch(() => {})
}
