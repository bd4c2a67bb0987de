// Snapshots of a VM as the controller sees them: `vm.snapshot(name)` saves the live state and disks on the VM's
// host, `vm.restore(name)` puts the VM back into it (a reset between steps), and `createVm({ from: snapshot })`
// starts another VM from it on the same host. Each is a test step.
import type { Host } from '../cluster/host.ts'
import { VtError } from '../protocol/errors.ts'
import type { VmInfo, VmSnapshotInfo } from '../protocol/vm.ts'
import { apiStep } from '../runner/apiStep.ts'

/** A snapshot of a VM: live state (memory, devices) plus disks, kept on the VM's host for the session. */
export class VmSnapshot {
  constructor(
    /** The host that holds it: clones of it start there. */
    readonly host: Host,
    readonly info: VmSnapshotInfo,
  ) {}

  get vm(): string {
    return this.info.vm
  }

  get name(): string {
    return this.info.name
  }

  toString(): string {
    return `VmSnapshot(${this.info.vm}:${this.info.name} on ${this.host.name})`
  }
}

/** What snapshot and restore need of a Vm handle. */
export interface SnapshottableVm {
  readonly name: string
  readonly host: Host
  /** @internal the VM's info after a restore (a new QEMU). */
  restarted(info: VmInfo): void
}

export function snapshotVm(vm: SnapshottableVm, name: string): Promise<VmSnapshot> {
  return apiStep(`${vm.name}: snapshot ${name}`, async () => {
    const info = await vm.host.service('vm').snapshot(vm.name, name)
    return new VmSnapshot(vm.host, info)
  })
}

export function restoreVm(vm: SnapshottableVm, snapshot: string | VmSnapshot): Promise<void> {
  const name = typeof snapshot === 'string' ? snapshot : snapshot.name
  return apiStep(`${vm.name}: restore ${name}`, async () => {
    if (typeof snapshot !== 'string' && (snapshot.vm !== vm.name || snapshot.host !== vm.host)) {
      throw new VtError(
        'BadRequestError',
        `VM ${vm.name} on host ${vm.host.name} cannot restore ${snapshot}: a VM restores its own snapshots ` +
          '(start another VM from it with createVm({ from: snapshot }))',
      )
    }
    vm.restarted(await vm.host.service('vm').restore(vm.name, name))
  })
}
