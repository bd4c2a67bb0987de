// What a paused run offers `vt console`: picking the run and the target from the command line, and the text
// that lists them (printed by the paused run and by `vt console --list`).
import type { ConsoleOpenRequest } from '../protocol/console.ts'
import type { DebugHost, DebugState } from './state.ts'

export interface ResolvedTarget {
  host: DebugHost
  target: ConsoleOpenRequest['target']
}

/** `vm`, `host/vm`, or `--host host` → the agent to connect to and the console to open. */
export function resolveTarget(
  state: DebugState,
  name: string | undefined,
  hostName: string | undefined,
): ResolvedTarget {
  const hostList = state.hosts.map(h => h.name).join(', ')
  if (hostName !== undefined) {
    if (name !== undefined) throw new Error(`give a VM or --host, not both`)
    const host = state.hosts.find(h => h.name === hostName)
    if (!host) throw new Error(`no host "${hostName}" in the paused run (hosts: ${hostList || 'none'})`)
    return { host, target: { kind: 'host', owner: { session: host.session.id, secret: host.session.secret } } }
  }
  if (name === undefined) throw new Error('name a VM (or host/VM), or give --host <host>; --list shows them')
  const slash = name.indexOf('/')
  const [wantHost, vm] = slash === -1 ? [undefined, name] : [name.slice(0, slash), name.slice(slash + 1)]
  const matches = state.hosts.filter(
    h => (wantHost === undefined || h.name === wantHost) && h.vms.some(v => v.name === vm),
  )
  if (matches.length === 0) {
    const all = state.hosts.flatMap(h => h.vms.map(v => `${h.name}/${v.name}`))
    throw new Error(`no VM "${name}" in the paused run (VMs: ${all.join(', ') || 'none'})`)
  }
  if (matches.length > 1) {
    throw new Error(
      `VM "${vm}" runs on several hosts: say which, e.g. ${matches.map(h => `${h.name}/${vm}`).join(' or ')}`,
    )
  }
  const host = matches[0]
  return { host, target: { kind: 'vm', name: vm, owner: { session: host.session.id, secret: host.session.secret } } }
}

/** The hosts, VMs and the commands reaching them, one per line. */
export function describeTargets(
  state: { hosts: Pick<DebugHost, 'name' | 'url' | 'address' | 'vms'>[] },
  runFlag = '',
): string[] {
  const lines: string[] = []
  const vmNames = state.hosts.flatMap(h => h.vms.map(v => v.name))
  for (const host of state.hosts) {
    lines.push(`  host ${host.name}  agent ${host.url}${host.address ? `  address ${host.address}` : ''}`)
    lines.push(`    shell:  vt console --host ${host.name}${runFlag}`)
    for (const vm of host.vms) {
      const unique = vmNames.filter(n => n === vm.name).length === 1
      lines.push(
        `    VM ${vm.name} (${vm.status}):  vt console ${unique ? vm.name : `${host.name}/${vm.name}`}${runFlag}`,
      )
    }
  }
  if (state.hosts.length === 0) lines.push('  (the test has no cluster: nothing to attach to)')
  return lines
}
