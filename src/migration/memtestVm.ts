// The memtest guest as a VM of the cluster: its spec (a boot disk each agent builds from the RAM range), and
// verifyMemoryIntegrity for such a VM (dump and check on its own host, so the RAM never crosses the wire).
import type { Host } from '../cluster/host.ts'
import { describeReport, type IntegrityReport, type MemtestRange, memtestRange } from '../protocol/memtest.ts'
import { vmQmpExecutor } from '../protocol/qmp.ts'
import type { VmInfo, VmSpec } from '../protocol/vm.ts'
import { type VerifyOptions, verifyMemoryIntegrityWith } from './verify.ts'

const MiB = 1024 * 1024

/**
 * A VmSpec that boots the memtest guest (firmware + boot sector from a read-only virtio disk in vt's cache).
 * `memory` in MiB (default 256). Extra disks (e.g. a host-local data disk for storage copy) may be added.
 */
export async function memtestSpec(options: {
  name: string
  memoryMiB?: number
  extraDisks?: VmSpec['disks']
  /** Dirty only this range (benchmarks); verifyMemoryIntegrity assumes the default range. */
  range?: MemtestRange
}): Promise<VmSpec> {
  const memoryMiB = options.memoryMiB ?? 256
  const range = options.range ?? memtestRange(memoryMiB * MiB)
  return {
    name: options.name,
    memory: memoryMiB,
    disks: [
      { memtest: { start: range.start, end: range.end }, bus: 'virtio', readOnly: true, id: 'memtest' },
      ...(options.extraDisks ?? []),
    ],
    ready: { console: 'A' },
  }
}

/** The memtest range of a VM, from its memory size. */
export function vmMemtestRange(vm: { info: VmInfo }): MemtestRange {
  return memtestRange(vm.info.memoryMiB * MiB)
}

/**
 * Stops the memtest guest, dumps its RAM range with pmemsave into the VM's directory on its host, has that
 * host's agent check it, then resumes it. Throws MemoryIntegrityError naming the first bad page.
 */
export async function verifyMemoryIntegrity(
  vm: { name: string; host: Host; info: VmInfo },
  options: VerifyOptions = {},
): Promise<IntegrityReport> {
  const svc = vm.host.service('vm')
  const migration = vm.host.service('migration')
  const range = memtestRange(vm.info.memoryMiB * MiB)
  return verifyMemoryIntegrityWith(
    {
      label: `${vm.name} on ${vm.host.name}`,
      qmp: vmQmpExecutor(svc.qmp, vm.name),
      dumpDir: vm.info.dir,
      check: (path, r) =>
        migration.checkMemoryDump({ path, start: r.start, size: r.end - r.start, keep: options.keepDumpOnFailure }),
      remove: async () => {}, // the agent removes the dump after checking it (unless kept)
    },
    range,
    options,
  )
}

export { describeReport }
