// The host's template cache: warm VMs saved right after boot, keyed by a hash of everything that shapes the
// machine (image, memory, cpus, machine type, accelerator, disks, NIC count, consoles, extra arguments and
// the QEMU build), in <image cache>/templates/<key>/. A VM of the same spec starts from one (a new QEMU
// loading the saved state, ~0.2 s) instead of booting. Templates belong to the cache, not to a session: the
// first VM of a spec builds one under a lock (one builder per key on the machine, others wait), written to a
// temporary directory and renamed into place, so a reader never sees half of one.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { VmSpecParsed } from '../../src/protocol/vm.ts'
import { cacheDir, withLock } from '../image/cache.ts'
import { qemuArgv } from './argv.ts'
import { readyMode } from './machine.ts'
import { readSaved, type SavedVm, writeSaved } from './snapshot.ts'

/** Bump when what a template holds changes in a way the key would not show. */
const TEMPLATE_VERSION = 4

let qemuBuild: string | undefined
function qemuVersion(): string {
  qemuBuild ??= execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? ''
  return qemuBuild
}

export function templatesDir(): string {
  return join(cacheDir(), 'templates')
}

/**
 * Why a spec cannot start from a template (undefined: it can). Only guests booted from a vt image with the
 * command channel qualify: the clone's identity is applied through it.
 */
export function templateRefusal(spec: VmSpecParsed): string | undefined {
  if (spec.paused || spec.incoming || spec.from) return 'it starts paused, incoming or from a snapshot'
  if (readyMode(spec) !== 'channel' || spec.kernel || spec.firmware || (spec.image ?? 'tiny') !== 'tiny') {
    return 'it is not booted from the tiny image (its identity is applied through the tiny command channel)'
  }
  if (spec.disks?.some(d => d.path || d.memtest || d.volume)) return 'it has a disk given by path or volume'
  if (spec.disks?.some(d => d.pool === 'shared')) return 'it has a disk in the shared pool'
  return undefined
}

/** The spec a template of `spec` boots with: its own name, NICs with known MACs on `taps` or the user network. */
export function templateSpec(spec: VmSpecParsed, taps: string[]): VmSpecParsed {
  let t = 0
  const nics = (spec.nics ?? []).map((n, i) =>
    n.mode === 'user'
      ? { mode: 'user' as const, mac: templateMac(i) }
      : { mode: 'tap' as const, ifname: taps[t++] ?? 'tap', mac: templateMac(i) },
  )
  return { ...spec, name: 'vt-template', nics, template: undefined }
}

/** The template key of a spec (its name, NIC addresses and MACs left out: every clone gets its own). */
export function templateKey(
  spec: VmSpecParsed,
  resolved: { image: string; memoryMiB: number; accel: 'kvm' | 'tcg' },
): string {
  // The QEMU command line with placeholder paths: any change of the devices vt gives a VM changes the key.
  const argv = qemuArgv({
    spec: templateSpec(spec, []),
    accel: resolved.accel,
    memoryMiB: resolved.memoryMiB,
    dir: '/dir',
    sockDir: '/sock',
    kernel: '/kernel',
    initrd: '/initrd',
    disks: (spec.disks ?? []).map((d, i) => ({
      id: d.id ?? `disk${i}`,
      file: `/disk${i}`,
      format: d.format ?? 'qcow2',
      bus: d.bus ?? 'virtio',
      readOnly: d.readOnly ?? false,
    })),
    channel: true,
  })
  const shape = {
    v: TEMPLATE_VERSION,
    argv,
    qemu: qemuVersion(),
    image: resolved.image,
    memoryMiB: resolved.memoryMiB,
    accel: resolved.accel,
    machine: spec.machine ?? 'q35',
    cpus: spec.cpus ?? 1,
    append: spec.append ?? '',
    noReboot: spec.noReboot !== false,
    disks: (spec.disks ?? []).map((d, i) => ({
      id: d.id ?? `disk${i}`,
      image: d.image,
      size: d.size,
      format: d.format,
      bus: d.bus ?? 'virtio',
      readOnly: d.readOnly ?? false,
    })),
    // QEMU's user network has device state of its own (slirp): a tap NIC needs a template with a tap.
    nics: (spec.nics ?? []).map(n => (n.mode === 'user' ? 'user' : 'tap')),
    consoles: (spec.consoles ?? []).map(c => c.name),
    extraArgs: spec.extraArgs ?? [],
  }
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 20)
}

/** The MAC NIC `i` of a template has (known, so a clone finds the NIC to give its own). */
export function templateMac(i: number): string {
  return `52:54:00:7e:00:${i.toString(16).padStart(2, '0')}`
}

/**
 * The saved template of `key`, built by `build(dir)` first when missing. `built` says this call made it.
 * `build` boots a VM and saves it into `dir` (see saveVm), leaving nothing running.
 */
export async function ensureTemplate(
  key: string,
  build: (dir: string) => Promise<void>,
  onWait?: (owner: string) => void,
): Promise<{ saved: SavedVm; built: boolean }> {
  const root = templatesDir()
  const dir = join(root, key)
  const ready = readSaved(dir)
  if (ready) return { saved: ready, built: false }
  mkdirSync(root, { recursive: true })
  return withLock(
    join(root, `${key}.lock`),
    async () => {
      const again = readSaved(dir)
      if (again) return { saved: again, built: false }
      const tmp = join(root, `${key}.tmp-${process.pid}`)
      rmSync(tmp, { recursive: true, force: true })
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(tmp, { recursive: true })
      try {
        await build(tmp)
        // The saved paths name the temporary directory: rewrite them for the final place before the rename.
        const saved = readSaved(tmp)
        if (!saved) throw new Error(`the template ${key} was not saved`)
        relocate(saved, tmp, dir)
        renameSync(tmp, dir)
        return { saved: readSaved(dir) as SavedVm, built: true }
      } catch (err) {
        rmSync(tmp, { recursive: true, force: true })
        throw err
      }
    },
    { timeoutMs: 300_000, staleMs: 300_000, onWait },
  )
}

function relocate(saved: SavedVm, from: string, to: string): void {
  const move = (p: string) => (p.startsWith(`${from}/`) ? join(to, p.slice(from.length + 1)) : p)
  const out: SavedVm = {
    ...saved,
    dir: to,
    state: move(saved.state),
    ...(saved.ram ? { ram: move(saved.ram) } : {}),
    consoleLog: move(saved.consoleLog),
    disks: saved.disks.map(d => ({ ...d, file: move(d.file) })),
  }
  // Written in the temporary directory; the rename publishes it with everything else.
  writeSaved(from, out)
}
