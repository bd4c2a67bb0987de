// Controller-side VM handles.

export type { VmInfo, VmSpec, VmStatus } from '../protocol/vm.ts'
export type { VmExecOptions, VmExecResult } from './vm.ts'
export { Vm, VmCommandError, VmConsole } from './vm.ts'
