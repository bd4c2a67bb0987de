// Making a template: boot a VM of the spec's shape (its own name, NICs on QEMU's user network with known MACs
// and no addresses) in the template's directory, wait for its command channel, save it, stop it. The
// process is tracked with the session that asked while it runs, so a crash mid-build still reaps it.
import { rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { VmSpecParsed } from '../../src/protocol/vm.ts'
import { createLooseTap, deleteLink } from '../net/tap.ts'
import type { ResolvedDisk } from './argv.ts'
import { Machine } from './machine.ts'
import { copyRamFile, scratchRamDir } from './ramFile.ts'
import type { CloneSource } from './restore.ts'
import { type SavedVm, saveVm, writeSaved } from './snapshot.ts'
import { makeSocketDir } from './sockets.ts'
import { ensureTemplate, templateKey, templateRefusal, templateSpec } from './templates.ts'

export interface BootParts {
  kernel: string
  initrd?: string
  append?: string
  memoryMiB: number
  accel: 'kvm' | 'tcg'
}

/** What building a template needs from the VM manager that asked. */
export interface TemplateDeps {
  host: string
  prepareDisks(spec: VmSpecParsed, dir: string): Promise<ResolvedDisk[]>
  hooks?: {
    track?(
      r:
        | { kind: 'process'; pid: number; group: boolean; label: string }
        | { kind: 'path'; path: string; label: string }
        | { kind: 'link'; name: string; label: string },
    ): Promise<string>
    untrack?(id: string): Promise<void>
  }
  progress?(message: string): void
}

interface TemplateParts extends BootParts, TemplateDeps {
  spec: VmSpecParsed
}

/** Kernel command-line words that give a VM its identity (set on each clone instead). */
const IDENTITY_WORD = /^vt\.(hostname|ip|gw|nic)=/

async function buildTemplate(dir: string, p: TemplateParts): Promise<SavedVm> {
  const label = `the template for VM ${p.spec.name} on host ${p.host}`
  const append = [...(p.append ?? '').split(' ').filter(w => w && !IDENTITY_WORD.test(w)), 'vt.hostname=vt-template']
  p.progress?.(`making a template for VMs like ${p.spec.name} (a boot, then saved for later VMs)`)
  const sockDir = makeSocketDir()
  const tracked: string[] = []
  const taps: string[] = []
  let m: Machine | undefined
  // The template's RAM is written where that is fast, then copied into the cache (see scratchRamDir).
  const scratch = await scratchRamDir(label, dir, p.hooks ?? {})
  const ram = join(scratch.dir, 'ram')
  try {
    for (const n of p.spec.nics ?? []) {
      if (n.mode === 'user') continue
      const tap = await createLooseTap()
      taps.push(tap)
      const id = await p.hooks?.track?.({ kind: 'link', name: tap, label })
      if (id) tracked.push(id)
    }
    const spec = templateSpec(p.spec, taps)
    const disks = await p.prepareDisks(spec, dir)
    m = await Machine.start({
      host: p.host,
      dir,
      sockDir,
      spec,
      accel: p.accel,
      memoryMiB: p.memoryMiB,
      kernel: p.kernel,
      initrd: p.initrd,
      append: append.join(' '),
      disks,
      // The template's RAM goes to a file that clones map copy-on-write (see argv.ts RamFile).
      ram: { file: ram, share: true, ignoreShared: false },
      onSpawn: async pid => {
        const id = await p.hooks?.track?.({ kind: 'process', pid, group: true, label })
        if (id) tracked.push(id)
      },
    })
    // The template's own disks are frozen as they are: its QEMU stops for good after the save.
    const saved = await saveVm(m, disks, dir, { copyDisks: false, resume: false, ramFile: ram })
    await m.destroy()
    const kept = join(dir, 'ram')
    await copyRamFile(ram, kept)
    const out = { ...saved, ram: kept }
    writeSaved(dir, out)
    return out
  } finally {
    await m?.destroy()
    await scratch.release()
    for (const t of taps) await deleteLink(t)
    for (const id of tracked.reverse()) await p.hooks?.untrack?.(id).catch(() => {})
    rmSync(sockDir, { recursive: true, force: true })
  }
}

/** The template for `spec` as a clone's source (built first when missing); undefined when it cannot have one. */
export async function templateSource(
  spec: VmSpecParsed,
  boot: BootParts,
  deps: TemplateDeps,
): Promise<CloneSource | undefined> {
  if (templateRefusal(spec)) return undefined
  const key = templateKey(spec, { image: dirname(boot.kernel), memoryMiB: boot.memoryMiB, accel: boot.accel })
  const t = await ensureTemplate(key, async dir => {
    await buildTemplate(dir, { ...boot, ...deps, spec })
  })
  return {
    saved: t.saved,
    restored: { from: 'template', name: key, ...(t.built ? { built: true } : {}) },
    ancestors: new Set(),
  }
}
