// A MigrationDriver over raw local QEMU processes (localQemu.ts): "hosts" are names that all live on
// 127.0.0.1. It lets the engine be tested, and benchmarked against a hand-written QMP sequence, without the
// agents; the Vm handle's driver (src/migration/vmDriver.ts) is the same engine over the control plane.
import type { DestinationSide, MigrationDriver, MigrationSide } from '../../../src/migration/types.ts'
import { freeLoopbackPort, type LocalQemu, sharedMemtestDisk, startLocalMemtest } from './localQemu.ts'

export interface LocalVm {
  host: string
  qemu: LocalQemu
}

function side(host: string, qemu: LocalQemu, address = '127.0.0.1'): MigrationSide {
  return {
    host,
    address,
    execute: (command, args, options) => qemu.qmp.execute(command, args, options),
    onEvent: listener => qemu.qmp.onEvent(listener),
    lost: Promise.race([qemu.exited.then(code => `qemu exited (${code})`), qemu.qmp.closed.then(reason => reason)]),
  }
}

export interface LocalDriverOptions {
  memoryMiB: number
  /** Hosts that count as connected. */
  hosts: string[]
  extraArgs?: string[]
  /** Per host: the network namespace its QEMU runs in and the address it is reached at (default loopback). */
  netns?: Record<string, { name: string; address: string }>
  /** The VM has no disk (an idle guest). */
  noDisk?: boolean
  /** Start destinations without -S (as the Vm driver does for shared storage): QEMU resumes the guest itself. */
  autostart?: boolean
  /** Called with every destination QEMU once started (fault tests kill it). */
  onDestination?: (qemu: LocalQemu) => void
}

export function localDriver(vm: LocalVm, options: LocalDriverOptions): MigrationDriver<string> {
  let pending: LocalQemu | undefined
  return {
    source: side(vm.host, vm.qemu, options.netns?.[vm.host]?.address),
    hostName: h => h,
    async precheck(to) {
      if (to === vm.host) throw new Error(`the destination ${to} is the host the VM already runs on`)
      if (!options.hosts.includes(to)) throw new Error(`unknown host ${to}; hosts: ${options.hosts.join(', ')}`)
    },
    async startDestination(to, { storage }) {
      // Shared storage: the same file. Copy: a blank disk of the same size that the mirror fills.
      const qemu = await startLocalMemtest({
        name: `${to}-in`,
        memoryMiB: options.memoryMiB,
        incoming: true,
        extraArgs: [...(options.autostart && storage === 'shared' ? [] : ['-S']), ...(options.extraArgs ?? [])],
        ...(options.noDisk ? { noDisk: true } : storage === 'shared' ? { disk: vm.qemu.disk } : { blankDisk: true }),
        ...(options.netns?.[to] ? { netns: options.netns[to].name } : {}),
      })
      pending = qemu
      options.onDestination?.(qemu)
      const s = side(to, qemu, options.netns?.[to]?.address)
      return { ...s, destroy: () => qemu.kill() } satisfies DestinationSide
    },
    freePort: () => freeLoopbackPort(), // only used by storage copy, which the netns tests do not use
    async commit(_dest, to) {
      const old = vm.qemu
      vm.qemu = pending as LocalQemu
      vm.host = to
      pending = undefined
      await old.qmp.quit().catch(() => {})
      await old.kill()
    },
  }
}

/**
 * A memtest VM "a" on a shared disk, run through `passes` memtest passes, for `fn` with the destinations it
 * starts (all killed afterwards, the disk removed).
 */
export async function withLocalVm(
  memoryMiB: number,
  passes: number,
  fn: (vm: LocalVm, dests: LocalQemu[]) => Promise<void>,
): Promise<void> {
  const pool = await sharedMemtestDisk(memoryMiB)
  const vm: LocalVm = { host: 'a', qemu: await startLocalMemtest({ name: 'a', memoryMiB, disk: pool.path }) }
  const dests: LocalQemu[] = []
  try {
    await vm.qemu.waitForPasses(passes)
    await fn(vm, dests)
  } finally {
    await vm.qemu.kill()
    for (const d of dests) await d.kill()
    await pool.remove()
  }
}
