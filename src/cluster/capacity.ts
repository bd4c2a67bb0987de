// What is free where, as the controller sees it: every host's capacity status, and a capacity refusal from one
// host completed with what the others have free, so that the error says where the VM would fit.
import { ErrorNames, VtError, VtRemoteError } from '../protocol/errors.ts'
import type { CapacityStatus } from '../protocol/session.ts'
import { describeFree } from '../util/capacity.ts'
import type { Host } from './host.ts'

export interface HostCapacity {
  host: Host
  status: CapacityStatus
}

/** Every host's capacity now (hosts that do not answer are left out). */
export async function capacityOf(hosts: readonly Host[]): Promise<HostCapacity[]> {
  const all = await Promise.all(
    hosts.map(async host => {
      try {
        return { host, status: await host.service('session').capacity() }
      } catch {
        return undefined
      }
    }),
  )
  return all.filter((x): x is HostCapacity => x !== undefined)
}

/** 'host a has 1 GiB free of 4 GiB and 6 of 8 cpus (2 VMs: x, y); host b has ...' */
export function describeHosts(hosts: readonly HostCapacity[]): string {
  return hosts.map(h => describeFree(h.host.name, h.status)).join('; ')
}

export function isCapacityError(e: unknown): e is VtError {
  return e instanceof VtError && e.code === 'CAPACITY'
}

/**
 * A VM did not fit on `host`: the agent's refusal (what it needs, what that host has free) plus what every other
 * host of the cluster has free, and what to do about it.
 */
export async function explainNoRoom(e: VtError, host: Host, others: readonly Host[]): Promise<VtError> {
  const rest = await capacityOf(others.filter(h => h !== host))
  const reason = e instanceof VtRemoteError ? e.data.message : e.message
  const elsewhere = rest.length ? `; elsewhere: ${describeHosts(rest)}` : ''
  return new VtError(
    ErrorNames.capacity,
    `${reason}${elsewhere}. Put the VM on a host with room (host: ...), let it wait longer (capacityTimeout), ` +
      'ask for less (memory, cpus), or give the hosts more (cluster.capacity)',
    { code: 'CAPACITY', cause: e },
  )
}
