// Controller-side VM handles.

export type { VmInfo, VmSpec, VmStatus } from '../protocol/vm.ts'
export { type SnapshottableVm, VmSnapshot } from './snapshot.ts'
export type { VmExecOptions, VmExecResult } from './vm.ts'
export { Vm, VmCommandError, VmConsole } from './vm.ts'
