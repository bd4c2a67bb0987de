// Moving volume contents: within one host's view (qemu-img convert by its agent), across hosts (the source
// serves the volume read-only over NBD, the destination's agent copies from it), and a live backup of a disk a
// running VM writes to (QEMU's blockdev-backup into a fresh volume: a consistent point-in-time copy).
import { randomBytes } from 'node:crypto'
import type { Host } from '../cluster/host.ts'
import type { ImageFormat, VolumeInfo, VolumeRef } from '../protocol/storage.ts'
import type { VmInfo } from '../protocol/vm.ts'
import { type OnProgress, progressReporter, withProgress } from './progress.ts'

const label = (r: VolumeRef) => `${r.pool.name}/${r.name}`

/** A full copy of `from` (seen from `from.host`) into `to` on `toHost` (which cannot see `from`). */
export async function copyAcross(
  from: { host: Host; ref: VolumeRef },
  to: { host: Host; ref: VolumeRef },
  o: { format?: ImageFormat; onProgress?: OnProgress; op?: string } = {},
): Promise<VolumeInfo> {
  const src = from.host.service('storage')
  const exp = await src.export({ volume: from.ref, address: from.host.address })
  try {
    return await withProgress(to.host, o.op ?? 'copy', label(to.ref), o.onProgress, id =>
      to.host.service('storage').create({ volume: to.ref, fromUrl: exp.url, format: o.format, progress: id }),
    )
  } finally {
    await src.unexport(exp.id).catch(() => {})
  }
}

/** What a live backup needs of the VM using the disk (a `Vm` handle fits). */
export interface DiskUser {
  readonly name: string
  readonly host: Host
  readonly info: VmInfo
  readonly status: string
}

const LIVE = new Set(['running', 'paused', 'starting'])

/** The VM among `users` that runs now (asked of its agent: a handle may outlive its VM). */
export async function liveUser(users: Iterable<DiskUser>): Promise<DiskUser | undefined> {
  for (const u of users) {
    if (!LIVE.has(u.status)) continue
    const now = await u.host
      .service('vm')
      .info(u.name)
      .catch(() => undefined)
    if (now && LIVE.has(now.status) && now.disks.some(d => u.info.disks.some(x => x.file === d.file))) return u
  }
  return undefined
}

/**
 * Backs up the disk of `vm` whose file is `source.filename` into the new volume `target` (on the VM's host),
 * with QEMU's blockdev-backup (sync full): the copy is the disk as it was when the job started, whatever the
 * guest writes meanwhile. The target volume is made (and recorded) by the storage service first.
 */
export async function liveBackup(
  vm: DiskUser,
  source: VolumeInfo,
  target: VolumeRef,
  o: { onProgress?: OnProgress } = {},
): Promise<VolumeInfo> {
  const host = vm.host
  const disk = vm.info.disks.find(d => d.file === source.filename)
  if (!disk) {
    throw new Error(
      `VM ${vm.name} does not use volume ${source.pool}/${source.name} (${source.filename}) on ${host.name}: its disks are ${vm.info.disks.map(d => d.file).join(', ')}`,
    )
  }
  const storage = host.service('storage')
  const made = await storage.create({ volume: target, size: String(source.virtualSize), format: 'qcow2' })
  const qmp = host.service('vm')
  const tag = randomBytes(4).toString('hex')
  const node = `vtbk${tag}`
  const job = `vtbkjob${tag}`
  let added = false
  try {
    await qmp.qmp(vm.name, 'blockdev-add', {
      driver: 'qcow2',
      'node-name': node,
      file: made.blockdev,
    } as never)
    added = true
    const report = progressReporter(host, 'backup', label(target), o.onProgress)
    await qmp.qmp(vm.name, 'blockdev-backup', { 'job-id': job, device: disk.id, target: node, sync: 'full' } as never)
    for (;;) {
      const jobs = (await qmp.qmp(vm.name, 'query-block-jobs')) as { device: string; offset: number; len: number }[]
      const j = jobs.find(x => x.device === job)
      if (!j) break
      report(j.offset, j.len)
      await new Promise(r => setTimeout(r, 100))
    }
    const ev = await qmp.waitForQmpEvent(vm.name, {
      event: 'BLOCK_JOB_COMPLETED',
      data: { device: job },
      sinceStart: true,
      timeoutMs: 10_000,
    })
    const err = (ev.data as { error?: string } | undefined)?.error
    if (err) throw new Error(`backup of ${vm.name}'s disk ${disk.id} failed in QEMU: ${err}`)
    report(source.virtualSize, source.virtualSize)
  } catch (e) {
    await qmp.qmp(vm.name, 'block-job-cancel', { device: job, force: true } as never).catch(() => {})
    if (added) await qmp.qmp(vm.name, 'blockdev-del', { 'node-name': node } as never).catch(() => {})
    added = false
    await storage.remove(target).catch(() => {})
    throw e
  } finally {
    if (added) await qmp.qmp(vm.name, 'blockdev-del', { 'node-name': node } as never).catch(() => {})
  }
  return storage.info(target)
}
