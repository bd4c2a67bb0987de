// Saved VMs: the live state (RAM and devices, a QEMU migration stream in a file) plus frozen disks, written to a
// directory; and the start of a new QEMU from one. Used for snapshots of a VM (session's dir) and for the
// host's templates (the image cache). QEMU 7.2 has no `file:` migration: the stream goes through `exec:cat`.
// A frozen disk is a copy of the disk's top file taken while QEMU is stopped and flushed; a VM started from
// it gets a fresh qcow2 overlay on top, so the frozen file is never written and serves any number of clones.
import { constants, copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import type { RamFile, ResolvedDisk } from './argv.ts'
import { shellQuote } from './guest.ts'
import { type Machine, qemuImg, VmError } from './machine.ts'

export interface SavedDisk {
  id: string
  /** The frozen file (read-only from now on) or, for a read-only disk, the disk itself. */
  file: string
  format: 'qcow2' | 'raw'
  bus: ResolvedDisk['bus']
  readOnly: boolean
  overlayOf?: string
}

export interface SavedVm {
  dir: string
  state: string
  /** The guest RAM as a file, left out of `state` (a template): a VM started from this maps it copy-on-write. */
  ram?: string
  disks: SavedDisk[]
  /** Each NIC's MAC at save time (what the guest and the device state carry). */
  macs: string[]
  /** The console log up to the save (a restored VM shows its boot messages too). */
  consoleLog: string
  stateBytes: number
  pausedMs: number
  /** The machine's shape: a VM started from this must have the same. */
  memoryMiB: number
  cpus: number
}

const META = 'saved.json'

/** Stops the guest (if running), writes its state to `dir`/state and freezes the disks into `dir`. */
export async function saveVm(
  m: Machine,
  disks: ResolvedDisk[],
  dir: string,
  opts: { copyDisks: boolean; resume: boolean; ramFile?: string },
): Promise<SavedVm> {
  const qmp = m.requireQmp()
  const t0 = performance.now()
  const wasRunning = (await qmp.execute('query-status')).status === 'running'
  if (wasRunning) await qmp.execute('stop')
  let resumed = false
  try {
    const macs = await nicMacs(m)
    const state = join(dir, 'state')
    // Unthrottled: the default max-bandwidth (128 MiB/s) would make a save of a few hundred MiB take seconds.
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 64 * 1024 * 1024 * 1024 })
    // RAM in a shared file stays there (written by the guest itself): the stream carries only the devices.
    const ignoreShared = opts.ramFile !== undefined
    await qmp.execute('migrate-set-capabilities', {
      capabilities: [{ capability: 'x-ignore-shared', state: ignoreShared }],
    })
    await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(state)}` })
    for (;;) {
      const s = await qmp.execute('query-migrate')
      if (s.status === 'completed') break
      if (s.status === 'failed' || s.status === 'cancelled') {
        throw new VmError(`${m.label}: saving its state failed: ${s['error-desc'] ?? s.status}`, 'SNAPSHOT_FAILED')
      }
      await delay(5)
    }
    // QEMU flushed and released the images at the end of the stream: their files are consistent now.
    const saved: SavedDisk[] = disks.map(d => {
      const base = { id: d.id, format: d.format, bus: d.bus, readOnly: d.readOnly, overlayOf: d.overlayOf }
      if (d.readOnly || !opts.copyDisks) return { ...base, file: d.file }
      const file = join(dir, `${d.id}.${d.format}`)
      copyFileSync(d.file, file, constants.COPYFILE_FICLONE)
      return { ...base, file }
    })
    const consoleLog = join(dir, 'console.log')
    writeFileSync(consoleLog, m.console.text(256 * 1024))
    if (opts.resume && wasRunning) {
      await qmp.execute('cont')
      resumed = true
    }
    const out: SavedVm = {
      dir,
      state,
      ...(opts.ramFile ? { ram: opts.ramFile } : {}),
      disks: saved,
      macs,
      consoleLog,
      stateBytes: statSync(state).size,
      memoryMiB: m.info('', { disks: [], consoles: {} }).memoryMiB,
      cpus: m.spec.cpus ?? 1,
      pausedMs: Math.round(performance.now() - t0),
    }
    writeSaved(dir, out)
    return out
  } catch (err) {
    if (opts.resume && wasRunning && !resumed) await qmp.execute('cont').catch(() => {})
    throw err
  }
}

export function writeSaved(dir: string, saved: SavedVm): void {
  writeFileSync(join(dir, META), JSON.stringify(saved))
}

/** Reads a saved VM back (undefined when the directory holds no complete one). */
export function readSaved(dir: string): SavedVm | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, META), 'utf8')) as SavedVm
  } catch {
    return undefined
  }
}

/** The disks a VM started from `saved` uses: a new overlay in `vmDir` on each frozen writable disk. */
export function disksFrom(saved: SavedVm, vmDir: string, tag: string): ResolvedDisk[] {
  return saved.disks.map(d => {
    if (d.readOnly) return { id: d.id, file: d.file, format: d.format, bus: d.bus, readOnly: true }
    const file = join(vmDir, `${d.id}.${tag}.qcow2`)
    qemuImg(['create', '-q', '-f', 'qcow2', '-F', d.format, '-b', d.file, file])
    return { id: d.id, file, format: 'qcow2', bus: d.bus, readOnly: false, overlayOf: d.file }
  })
}

/** The -incoming value that loads `saved` (the path is quoted for the shell QEMU runs it with). */
export function incomingFrom(saved: SavedVm): string {
  return `exec:cat ${shellQuote(saved.state)}`
}

/** How a VM started from `saved` holds its RAM: the saved file mapped copy-on-write, or its own (undefined). */
export function ramFrom(saved: SavedVm): RamFile | undefined {
  return saved.ram ? { file: saved.ram, share: false, ignoreShared: true } : undefined
}

/**
 * Waits until a QEMU started with -incoming from a file has loaded it, then runs the guest (the state was
 * saved with the guest stopped, so QEMU keeps it paused after loading).
 */
export async function runLoaded(m: Machine, timeoutMs: number): Promise<void> {
  const qmp = m.requireQmp()
  const deadline = Date.now() + timeoutMs
  for (;;) {
    // A stream that does not load makes QEMU exit: the next call then fails with its exit reason.
    const s = await qmp.execute('query-status')
    if (s.status === 'running') return
    if (s.status !== 'inmigrate') {
      // Loaded. A clone's RAM is private: it migrates and snapshots like any VM's, with the capability off.
      if (m.ram?.ignoreShared) {
        await qmp.execute('migrate-set-capabilities', {
          capabilities: [{ capability: 'x-ignore-shared', state: false }],
        })
      }
      await qmp.execute('cont')
      return
    }
    if (Date.now() > deadline) {
      throw new VmError(`${m.label}: its saved state did not load within ${timeoutMs} ms`, 'RESTORE_TIMEOUT')
    }
    await delay(3)
  }
}

/** Each NIC's current MAC as the device holds it (the guest may have changed it). */
async function nicMacs(m: Machine): Promise<string[]> {
  const filters = (await m
    .requireQmp()
    .execute('query-rx-filter')
    .catch(() => [])) as { name: string; 'main-mac': string }[]
  const byId = new Map(filters.map(f => [f.name, f['main-mac']]))
  return (m.spec.nics ?? []).map((_, i) => byId.get(`net${i}-dev`) ?? '')
}
