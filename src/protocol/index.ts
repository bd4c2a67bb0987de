// The agent protocol: one contract for every service, imported by the agent and the controller.
//
// ADDING A SERVICE (e.g. `vm`)
//   1. src/protocol/vm.ts:   export const vm = defineService('vm', { start: call(vmSpec).returns<VmInfo>(), ... },
//                                                           { stateChanged: event<VmStateEvent>() })
//      Arguments are zod schemas: the agent validates every call before your code runs.
//   2. src/protocol/registry.ts: one line `vm,` in `services`.
//   3. agent/services/vm.ts: export const vmService = implement('vm', agent => session => ({ async start(spec) {...} }))
//      `agent => ...` runs once per agent (probe, register reapers, add facts); `session => ({...})` once per
//      session and returns the functions. tsc checks them against the contract.
//   4. agent/services/index.ts: one line `vm: vmService,`.
//   The controller then calls `host.service('vm').start(spec)` and listens with `host.on('vm', 'stateChanged', fn)`.
//
// SESSION API (agent/service.ts, `session` in the factory above)
//   session.id, session.dir          a directory of the session's own, removed when the session is reaped
//   await session.track({ kind: 'process', pid, label })     records a process (its start time is read from
//                                    /proc so a reused pid is never killed; the process group is killed too
//                                    when `group: true`); returns a resource id
//   await session.track({ kind: 'path', path })              a file or directory removed on reap
//   await session.track({ kind: 'netns', name, ... })        any other kind: its reaper is registered once with
//                                    agent.registerReaper('netns', async record => {...})
//   await session.untrack(id)        forget it (you cleaned it up yourself); session.untrack(id, { reap: true })
//                                    reaps it now
//   session.emit('event', payload)   an event to the controller (dropped while the link is down)
//   session.signal                   aborted when the session ends; session.onClose(fn) runs before reaping
//   Records are written to <state-dir>/sessions/<id>.json (a journal) before track() returns. They are reaped when the
//   lease expires, when the controller closes the session, and at the next agent start after a crash.
//   agent.addFacts(async () => ({ accelerators: [...] }))   contributes host facts (e.g. after a probe boot).
export * from './contract.ts'
export * from './errors.ts'
export type { ExecOutputEvent, ExecRequest, ExecResult } from './exec.ts'
export type { HostFacts } from './facts.ts'
export type { FileStat } from './files.ts'
export * from './registry.ts'
export type { Capacity, CapacityStatus, Reservation, ResourceInfo } from './session.ts'
export type { ProcessInfo, SpawnExitEvent, SpawnOutputEvent, SpawnRequest } from './spawn.ts'
export * from './wire.ts'
