// Guest networks on this host (contract: src/protocol/network.ts). A network is recorded with the session
// before the call returns; its reaper (and the taps' 'link' reaper) remove it whatever the controller does.
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { NetworkInfo } from '../../src/protocol/network.ts'
import { attachHost, createSegment, destroySegment } from '../net/segment.ts'
import { deleteLink } from '../net/tap.ts'
import { implement, type ResourceRecord } from '../service.ts'

export const networkService = implement('network', agent => {
  agent.registerReaper('network', async (record: ResourceRecord, log) => {
    const vni = (record as unknown as { vni: number }).vni
    await destroySegment(vni)
    log.info('removed network', { vni })
  })
  agent.registerReaper('link', async (record: ResourceRecord) => {
    await deleteLink((record as unknown as { name: string }).name)
  })
  return session => {
    const nets = new Map<number, { info: NetworkInfo; resource: string }>()
    const get = (vni: number) => {
      const n = nets.get(vni)
      if (!n) throw new VtError(ErrorNames.notFound, `no network with VNI ${vni} in this session`, { code: 'ENOENT' })
      return n
    }
    return {
      async create(opts) {
        if (nets.has(opts.vni)) return get(opts.vni).info
        // Recorded first: a crash half way still removes whatever part exists.
        const resource = await session.track({ kind: 'network', vni: opts.vni, label: `network vni ${opts.vni}` })
        try {
          const info = await createSegment(opts)
          nets.set(opts.vni, { info, resource })
          session.log.info('network created', { ...info })
          return info
        } catch (e) {
          await session.untrack(resource)
          throw e
        }
      },
      attach: ({ vni, ip }) => {
        get(vni)
        return attachHost(vni, ip)
      },
      async destroy({ vni }) {
        const n = nets.get(vni)
        if (!n) return false
        nets.delete(vni)
        await session.untrack(n.resource, { reap: true })
        return true
      },
      list: () => [...nets.values()].map(n => n.info),
    }
  }
})
