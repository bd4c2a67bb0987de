// Faults on this host (contract: src/protocol/faults.ts). Each is recorded with the session before the call
// returns, so the session's reaper heals it when the controller ends the session or disappears.
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { FaultInfo } from '../../src/protocol/faults.ts'
import { applyDropFrames, applyPartition, applySlowLink, type FaultRecord, undoFault } from '../net/faults.ts'
import { implement, type ResourceRecord } from '../service.ts'

function describe(r: FaultRecord): string {
  if (r.fault === 'partition') return `drop traffic to/from ${r.peers.join(', ')} (nft table inet ${r.table})`
  if (r.fault === 'dropFrames') return `drop frames between two groups on bridge ${r.bridge} (nft table ${r.table})`
  return `shape traffic to ${r.peer} on ${r.dev} to ${r.rate} (htb class 1:${r.minor} + tbf)`
}

/** Only QEMU started by vt for this VM name may be killed through this call. */
function checkQemu(pid: number, name: string): void {
  let argv: string[]
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  } catch {
    throw new VtError(ErrorNames.notFound, `no process ${pid} on this host (QEMU of ${name} already gone?)`)
  }
  const i = argv.indexOf('-name')
  const named = i >= 0 && (argv[i + 1] ?? '').split(',')[0] === `vt-${name}`
  if (!basename(argv[0]).startsWith('qemu-system') || !named) {
    throw new VtError(ErrorNames.badRequest, `process ${pid} is not the QEMU of VM ${name}`)
  }
}

export const faultsService = implement('faults', agent => {
  agent.registerReaper('fault', async (record: ResourceRecord, log) => {
    const r = (record as unknown as { data: FaultRecord }).data
    await undoFault(r)
    log.info('healed fault', { what: describe(r) })
  })
  return session => {
    const active = new Map<string, { info: FaultInfo; resource: string; record: FaultRecord }>()
    let next = 1
    const add = async (record: FaultRecord): Promise<FaultInfo> => {
      let resource: string
      try {
        resource = await session.track({ kind: 'fault', label: record.fault, data: record })
      } catch (e) {
        await undoFault(record).catch(() => {})
        throw e
      }
      const info: FaultInfo = { id: `f${next++}`, kind: record.fault, description: describe(record) }
      active.set(info.id, { info, resource, record })
      session.log.info('fault injected', { id: info.id, what: info.description })
      return info
    }
    return {
      partition: ({ peers }) => applyPartition(peers).then(add),
      slowLink: ({ peer, rate }) => applySlowLink(peer, rate).then(add),
      dropFrames: ({ bridge, a, b }) => applyDropFrames(bridge, a, b).then(add),
      async killQemu({ name, pid }) {
        checkQemu(pid, name)
        process.kill(pid, 'SIGKILL')
        session.log.info('killed QEMU', { name, pid })
      },
      async heal(id) {
        const f = active.get(id)
        if (!f) return false
        active.delete(id)
        await undoFault(f.record)
        await session.untrack(f.resource)
        session.log.info('fault healed', { id, what: f.info.description })
        return true
      },
      list: () => [...active.values()].map(f => f.info),
    }
  }
})
