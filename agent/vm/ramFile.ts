// A snapshot's RAM moved out of its migration stream into a file, so that restores and clones map it
// copy-on-write instead of loading it (a 256 MiB tiny guest's stream holds ~80 MiB of RAM: loading that was most
// of a restore). QEMU 7.2 cannot write RAM to a file directly (no mapped-ram), so a helper QEMU of the same
// devices, paused, loads the stream into file-backed shared RAM and saves its devices again with x-ignore-shared.
// The VM itself runs on meanwhile: this costs the snapshot time, not the guest pause.
import { execFile } from 'node:child_process'
import { accessSync, constants, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Machine, type MachineOptions, VmError } from './machine.ts'
import { disksFrom, incomingFrom, type SavedVm, saveVm, writeSaved } from './snapshot.ts'
import { makeSocketDir } from './sockets.ts'

export interface RamFileHooks {
  track?(
    r: { kind: 'process'; pid: number; group: boolean; label: string } | { kind: 'path'; path: string; label: string },
  ): Promise<string>
  untrack?(id: string): Promise<void>
}

/**
 * A scratch directory for RAM that a QEMU writes through a shared mapping: tmpfs where there is one. On ext4
 * every first write to a page of a shared file mapping allocates blocks: ~9x slower than tmpfs here, which made
 * a 256 MiB guest's RAM take over a second to load. Tracked with the session, so a crash leaves nothing.
 */
export async function scratchRamDir(
  label: string,
  fallback: string,
  hooks: RamFileHooks,
): Promise<{ dir: string; release(): Promise<void> }> {
  let root = fallback
  try {
    accessSync('/dev/shm', constants.W_OK)
    root = '/dev/shm'
  } catch {}
  mkdirSync(root, { recursive: true })
  const dir = mkdtempSync(join(root, 'vt-ram-'))
  const id = await hooks.track?.({ kind: 'path', path: dir, label: `${label} (RAM scratch)` })
  return {
    dir,
    async release() {
      rmSync(dir, { recursive: true, force: true })
      if (id) await hooks.untrack?.(id).catch(() => {})
    },
  }
}

/** Copies a RAM file leaving its zero blocks out (most of a guest's RAM): cp finds them by content. */
export async function copyRamFile(from: string, to: string): Promise<void> {
  await promisify(execFile)('cp', ['--sparse=always', from, to])
}

/** Rewrites `saved` (a stream with RAM) into devices-only state + `ram`; returns the new SavedVm. */
export async function moveRamToFile(saved: SavedVm, start: MachineOptions, hooks: RamFileHooks = {}): Promise<SavedVm> {
  if (saved.ram) return saved
  const label = `the snapshot helper of VM ${start.spec.name} on host ${start.host}`
  const dir = join(saved.dir, 'helper')
  mkdirSync(dir, { recursive: true })
  const sockDir = makeSocketDir()
  const tracked: string[] = []
  let m: Machine | undefined
  const scratch = await scratchRamDir(label, saved.dir, hooks)
  try {
    const ram = join(saved.dir, 'ram')
    const loading = join(scratch.dir, 'ram')
    m = await Machine.start({
      host: start.host,
      dir,
      sockDir,
      accel: start.accel,
      memoryMiB: start.memoryMiB,
      kernel: start.kernel,
      initrd: start.initrd,
      append: start.append,
      disks: disksFrom(saved, dir, 'h'),
      spec: { ...start.spec, paused: true, incoming: incomingFrom(saved) },
      ram: { file: loading, share: true, ignoreShared: false },
      nicsDetached: true,
      onSpawn: async pid => {
        const id = await hooks.track?.({ kind: 'process', pid, group: true, label })
        if (id) tracked.push(id)
      },
    })
    const qmp = m.requireQmp()
    const deadline = Date.now() + 120_000
    while ((await qmp.execute('query-status')).status === 'inmigrate') {
      if (Date.now() > deadline)
        throw new VmError(`${label}: the snapshot did not load within 120 s`, 'SNAPSHOT_FAILED')
      await delay(3)
    }
    const out = await saveVm(m, [], dir, { copyDisks: false, resume: false, ramFile: loading })
    await m.destroy()
    await copyRamFile(loading, ram)
    // The devices-only state replaces the stream; disks, MACs and console stay the snapshot's.
    renameSync(out.state, saved.state)
    const moved: SavedVm = { ...saved, ram, stateBytes: out.stateBytes }
    writeSaved(saved.dir, moved)
    return moved
  } catch (err) {
    const why = m && !m.alive ? `: ${m.exitReason()}` : ''
    throw new VmError(
      `${label}: moving the snapshot's RAM into a file failed${why}: ${(err as Error).message}`,
      'SNAPSHOT_FAILED',
    )
  } finally {
    await m?.destroy()
    for (const id of tracked.reverse()) await hooks.untrack?.(id).catch(() => {})
    await scratch.release()
    rmSync(dir, { recursive: true, force: true })
    rmSync(sockDir, { recursive: true, force: true })
  }
}
