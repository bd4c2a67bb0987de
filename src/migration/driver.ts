// The migration driver for VMs managed by the agents (the `vm` service): each side's QMP, events and link state
// through its host's agent, the destination started from the source's spec, storage copy set up per disk.
import type { Host } from '../cluster/host.ts'
import { ErrorNames, VtError } from '../protocol/errors.ts'
import { vmQmpExecutor } from '../protocol/qmp.ts'
import type { VolumeRef } from '../protocol/storage.ts'
import type { VmInfo, VmSpec } from '../protocol/vm.ts'
import { poolTraits } from '../storage/types.ts'
import { describeFree, describeNeed } from '../util/capacity.ts'
import type { DestinationSide, MigrateOptions, MigrationDriver, MigrationSide } from './types.ts'

const MiB = 1024 * 1024

/** What migrateVm needs from a VM handle. */
export interface MigratableVm {
  readonly name: string
  /** The host the VM runs on now. */
  readonly host: Host
  /** The spec it was created with (the destination is started from the same one). */
  readonly spec: VmSpec
  /** Its current VmInfo on `host` (dir, disks, memory, accelerator). */
  readonly info: VmInfo
  /** Called once a migration completed: from now on the VM is `info` on `host`. */
  rebind(host: Host, info: VmInfo): void
}

export interface MigrateVmOptions<V extends MigratableVm = MigratableVm> extends MigrateOptions<Host, V> {
  /** The cluster's hosts: a destination outside this list is refused as unknown. */
  hosts?: readonly Host[]
  /** Report the migration as a test step with the result attached (default true inside a test). */
  report?: boolean
}

function vmSide(host: Host, name: string, subs: (() => void)[]): MigrationSide {
  const svc = host.service('vm')
  const linkDown = () => {
    const { state, closedError } = host.client
    if (state === 'connected') return undefined
    return `the link to host ${host.name}'s agent is ${state}${closedError ? ` (${closedError.message})` : ''}`
  }
  const lost = new Promise<string>(resolve => {
    subs.push(
      host.on('vm', 'state', e => {
        if (e.name === name && e.status === 'exited') resolve(`QEMU exited${e.reason ? `: ${e.reason}` : ''}`)
      }),
      // The link's state arrives as an event: 'reconnecting' or 'closed' ends the migration's waits at once.
      host.client.onLinkState(() => {
        const why = linkDown()
        if (why) resolve(why)
      }),
    )
    const why = linkDown()
    if (why) resolve(why)
  })
  return {
    host: host.name,
    address: host.address,
    ...vmQmpExecutor(svc.qmp, name),
    onEvent: listener =>
      host.on('vm', 'qmp', e => {
        if (e.name === name) listener({ event: e.event, data: e.data, timestamp: e.timestamp })
      }),
    lost,
    linkDown,
    gone: () => host.client.state === 'closed',
  }
}

export function isHost(x: unknown): x is Host {
  return !!x && typeof x === 'object' && typeof (x as Host).service === 'function' && 'client' in (x as object)
}

/** Disks of the VM that live in its own directory on its host, i.e. that the destination cannot see. */
function hostLocalDisks(info: VmInfo): VmInfo['disks'] {
  const dir = info.dir.endsWith('/') ? info.dir : `${info.dir}/`
  return info.disks.filter(d => d.file.startsWith(dir))
}

export function vmDriver<V extends MigratableVm>(
  vm: V,
  options: MigrateVmOptions<V>,
  subs: (() => void)[],
): MigrationDriver<Host> {
  const source = vmSide(vm.host, vm.name, subs)
  let destHost: Host | undefined
  return {
    source,
    hostName: h => (isHost(h) ? h.name : String(h)),
    async precheck(to) {
      if (!isHost(to))
        throw new TypeError(`vm.migrate({ to }): \`to\` must be a Host from cluster.hosts, got ${String(to)}`)
      if (to === vm.host || to.name === vm.host.name)
        throw new Error(`the destination ${to.name} is the host ${vm.name} already runs on`)
      if (options.hosts && !options.hosts.includes(to)) {
        throw new Error(
          `unknown host ${to.name}: not one of this cluster's hosts (${options.hosts.map(h => h.name).join(', ')})`,
        )
      }
      if (to.client.state !== 'connected')
        throw new Error(`host ${to.name} is not connected (its link is ${to.client.state})`)
      const facts = await to.refreshFacts()
      // The destination's agent books the VM when it starts it (the one place that decides); this only says
      // early, and clearly, that it will not fit. The booking moves with the VM: the source's goes with it.
      const need = { memoryBytes: vm.info.memoryMiB * MiB, cpus: vm.info.cpus }
      const cap = await to.service('session').capacity()
      if (need.memoryBytes > cap.free.memoryBytes || need.cpus > cap.free.cpus) {
        throw new VtError(
          ErrorNames.capacity,
          `${vm.name} needs ${describeNeed(need)}: ${describeFree(to.name, cap)}`,
          {
            code: 'CAPACITY',
          },
        )
      }
      if (!facts.accelerators.includes(vm.info.accel)) {
        throw new Error(
          `host ${to.name} offers ${facts.accelerators.join(', ') || 'no accelerator'}, ${vm.name} runs under ${vm.info.accel}`,
        )
      }
      if ((options.storage ?? 'shared') === 'shared') {
        // Volumes: their pool says whether the destination sees them (nfs: yes; dir: a directory per host).
        for (const [id, ref] of volumeDisks(vm.spec)) {
          if (!poolTraits[ref.pool.type].shared) {
            throw new Error(
              `disk ${id} of ${vm.name} is volume ${ref.name} of ${ref.pool.type} pool "${ref.pool.name}", which ${to.name} cannot see (a directory per host): migrate with storage: 'copy' or put the volume in a shared pool (nfs)`,
            )
          }
          // A shared pool still has to be reachable from the destination (an nfs server it cannot reach, an
          // export it may not mount): its agent looks the volume up, before anything starts.
          await to
            .service('storage')
            .info(ref)
            .catch((e: Error) => {
              throw new Error(
                `host ${to.name} cannot see disk ${id} of ${vm.name} (volume ${ref.name} of pool "${ref.pool.name}"): ${e.message}`,
              )
            })
        }
        const volumes = new Set(volumeDisks(vm.spec).keys())
        const local = hostLocalDisks(vm.info).filter(d => !isReadOnly(vm.spec, d.id))
        if (local.length > 0) {
          throw new Error(
            `disk ${local.map(d => d.id).join(', ')} of ${vm.name} is host-local (${local[0].file}): migrate with storage: 'copy' or put it in the shared pool (pool: 'shared')`,
          )
        }
        for (const d of vm.info.disks.filter(d => !isReadOnly(vm.spec, d.id) && !volumes.has(d.id))) {
          const seen = await to.files
            .stat(d.file)
            .catch((e: { code?: string }) => (e.code === 'OUTSIDE_ROOTS' ? 'unknown' : null))
          if (!seen) {
            throw new Error(
              `host ${to.name} cannot see disk ${d.id} of ${vm.name} at ${d.file} (is it in the shared pool?)`,
            )
          }
        }
      }
    },
    async startDestination(to, { storage }) {
      const svc = to.service('vm')
      const blocks = await source.execute('query-block')
      const specDisks = vm.spec.disks ?? []
      const disks = vm.info.disks.map((d, i) => {
        const specDisk = specDisks[i] ?? {}
        const common = {
          id: d.id,
          ...(specDisk.bus ? { bus: specDisk.bus } : {}),
          ...(specDisk.readOnly ? { readOnly: true } : {}),
        }
        // The memtest boot disk is built by each agent from its range (content-addressed), never sent.
        if (specDisk.memtest) return { ...common, memtest: specDisk.memtest }
        if (storage === 'copy' && !specDisk.readOnly) {
          const size = blocks.find(b => b.device === d.id || b.inserted?.['node-name'] === d.id)?.inserted?.image?.[
            'virtual-size'
          ]
          if (!size)
            throw new Error(`cannot tell the size of disk ${d.id} of ${vm.name} to create its copy on ${to.name}`)
          return { ...common, size: String(size), format: d.format as 'raw' | 'qcow2' }
        }
        // A volume of a shared pool: the destination opens the same volume (its pool resolves it there).
        if (specDisk.volume) return { ...common, volume: specDisk.volume }
        return { ...common, path: d.file, format: d.format as 'raw' | 'qcow2' }
      })
      // A clone's `from` (a snapshot on the source host) and `template` say how it started, not what it is: the
      // destination is filled by the stream.
      const { from: _from, template: _template, ...shape } = vm.spec
      // Shared storage: no -S, so QEMU resumes the guest itself the moment it has loaded the last pass (it
      // activates the disks first), saving the guest the round trip of vt's `cont` in its pause. A copy
      // stays paused until the mirror has finished on the source.
      const paused = storage === 'copy'
      const spec: VmSpec = { ...shape, disks: disks.length > 0 ? disks : undefined, incoming: 'defer', paused }
      if (disks.length === 0) delete spec.disks
      await svc.create(spec)
      destHost = to
      const side = vmSide(to, vm.name, subs)
      return {
        ...side,
        destroy: async () => {
          await svc.destroy(vm.name).catch(() => {})
        },
      } satisfies DestinationSide
    },
    freePort: to => to.service('migration').freePort({ address: to.address }),
    // The source's agent connects to the destination's agent port: the same underlay path the stream takes.
    checkPath: to => vm.host.service('migration').probe({ address: to.address, port: agentPort(to), timeoutMs: 3000 }),
    async commit(_dest, to) {
      // Guest networks: have QEMU announce the guest's MAC from its new port at once (RARP rounds), so the
      // bridges and VXLAN devices of every host learn where it is now instead of waiting for its traffic.
      if ((vm.spec.nics ?? []).some(n => n.mode === 'bridge')) {
        await (destHost ?? to)
          .service('vm')
          .qmp(vm.name, 'announce-self', { initial: 50, max: 550, rounds: 5, step: 100 })
          .catch(() => {})
      }
      // The destination's info first: should that fail, the source (paused in postmigrate) still exists.
      const info = await to.service('vm').info(vm.name)
      const from = vm.host
      vm.rebind(destHost ?? to, info)
      await from
        .service('vm')
        .destroy(vm.name)
        .catch(() => {})
    },
  }
}

function agentPort(h: Host): number {
  const u = new URL(h.url)
  return Number(u.port) || (u.protocol === 'wss:' ? 443 : 80)
}

/** The spec's volume disks by disk id. */
function volumeDisks(spec: VmSpec): Map<string, VolumeRef> {
  const out = new Map<string, VolumeRef>()
  ;(spec.disks ?? []).forEach((d, i) => {
    if (d.volume) out.set(d.id ?? `disk${i}`, d.volume as VolumeRef)
  })
  return out
}

function isReadOnly(spec: VmSpec, id: string): boolean {
  return (spec.disks ?? []).some((d, i) => (d.id ?? `disk${i}`) === id && d.readOnly)
}
