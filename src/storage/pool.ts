// `cluster.pool(name)` → a Pool, and its volumes as Image handles. Every operation runs on one host's agent
// (the storage service) as a test step: for a `dir` pool (a directory per host) on the host the pool is bound to
// with `pool.on(host)` (default: the cluster's first host); for a shared pool (nfs) on any host, all see the same.
import type { Host } from '../cluster/host.ts'
import type {
  CheckResult,
  ImageFormat,
  PoolCapacity,
  PoolDef,
  SnapshotInfo,
  VolumeInfo,
  VolumeRef,
} from '../protocol/storage.ts'
import { apiStep } from '../runner/apiStep.ts'
import { copyAcross, type DiskUser, liveBackup, liveUser } from './copy.ts'
import { type OnProgress, withProgress } from './progress.ts'
import { poolTraits } from './types.ts'

export interface CreateOptions {
  /** '64M', '10G', ... (default: the size of `from`). */
  size?: string
  format?: ImageFormat
  /** Copy this image's contents (its whole backing chain, flattened). */
  from?: Image
  onProgress?: OnProgress
}

export interface CopyOptions {
  format?: ImageFormat
  /** qcow2 compression (convert only). */
  compress?: boolean
  onProgress?: OnProgress
}

export class Pool {
  constructor(
    readonly def: PoolDef,
    private readonly hosts: readonly Host[],
    private readonly bound?: Host,
  ) {}

  get name(): string {
    return this.def.name
  }
  get type(): PoolDef['type'] {
    return this.def.type
  }
  /** Every host sees the same volumes (nfs); false for a directory per host (dir). */
  get shared(): boolean {
    return poolTraits[this.def.type].shared
  }
  /** The host whose view of the pool this handle uses. */
  get host(): Host {
    const h = this.bound ?? this.hosts[0]
    if (!h) throw new Error(`pool "${this.name}": the cluster has no hosts`)
    return h
  }

  /** This pool as `host` sees it (a dir pool: that host's directory). */
  on(host: Host | string): Pool {
    const h = typeof host === 'string' ? this.hosts.find(x => x.name === host) : host
    if (!h || !this.hosts.includes(h)) {
      throw new Error(
        `pool "${this.name}".on(${typeof host === 'string' ? host : host.name}): not one of the cluster's hosts (${this.hosts.map(x => x.name).join(', ')})`,
      )
    }
    return new Pool(this.def, this.hosts, h)
  }

  /** Whether `host` sees this handle's volumes. */
  sees(host: Host): boolean {
    return this.shared || host === this.host
  }

  /** A handle on volume `name` (no call is made: info() tells whether it exists). */
  volume(name: string): Image {
    return new Image(this, name)
  }

  toString(): string {
    return this.shared ? `pool ${this.name}` : `pool ${this.name}@${this.host.name}`
  }

  /** A new volume: empty of `size`, or a copy of `from`. */
  create(name: string, options: CreateOptions = {}): Promise<Image> {
    const what = options.from ? `from ${options.from}` : `${options.size ?? '?'} ${options.format ?? 'qcow2'}`
    return apiStep(`${this}: create ${name} (${what})`, async () => {
      const image = this.volume(name)
      const from = options.from
      if (from && !from.pool.sees(this.host)) {
        await copyAcross(from, image, { format: options.format, onProgress: options.onProgress, op: 'create' })
        return image
      }
      await withProgress(this.host, 'create', `${this.name}/${name}`, options.onProgress, id =>
        this.host.service('storage').create({
          volume: image.ref,
          size: options.size,
          format: options.format,
          from: from?.ref,
          progress: id,
        }),
      )
      return image
    })
  }

  /** The pool's volumes with their info. */
  list(): Promise<VolumeInfo[]> {
    return apiStep(`${this}: list`, () => this.host.service('storage').list(this.def))
  }

  /** Total and free bytes of what holds the pool, and what its volumes take. */
  capacity(): Promise<PoolCapacity> {
    return apiStep(`${this}: capacity`, () => this.host.service('storage').capacity(this.def))
  }
}

/** A volume of a pool: a disk image. Pass it to a VM as `disks: [{ volume: image }]`. */
export class Image {
  /** @internal VMs created with this volume as a disk (a live backup goes through the running one). */
  readonly users = new Set<DiskUser>()

  constructor(
    readonly pool: Pool,
    readonly name: string,
  ) {}

  get host(): Host {
    return this.pool.host
  }
  get ref(): VolumeRef {
    return { pool: this.pool.def, name: this.name }
  }
  private get svc() {
    return this.host.service('storage')
  }
  toString(): string {
    return this.pool.shared ? `${this.pool.name}/${this.name}` : `${this.pool.name}/${this.name}@${this.host.name}`
  }

  /** A qcow2 overlay on this image (O(1) whatever its size), in this pool or in `options.pool`. */
  clone(name: string, options: { pool?: Pool } = {}): Promise<Image> {
    const target = options.pool ?? this.pool
    return apiStep(`image ${this}: clone ${name}${options.pool ? ` into ${target}` : ''}`, async () => {
      if (!this.pool.sees(target.host)) {
        throw new Error(
          `cannot clone ${this} into ${target}: a clone is an overlay on its base, which ${target.host.name} cannot see (${this.pool.type} pool ${this.pool.name} is host-local); copy the base there first with image.backup(${target.name === this.pool.name ? `pool.on('${target.host.name}')` : target.name}, '${this.name}')`,
        )
      }
      const clone = target.volume(name)
      await target.host.service('storage').clone({ from: this.ref, to: clone.ref })
      return clone
    })
  }

  /** An internal qcow2 snapshot of the volume (not while a VM uses it). */
  snapshot(name: string): Promise<SnapshotInfo[]> {
    return apiStep(`image ${this}: snapshot ${name}`, () => this.svc.snapshot({ volume: this.ref, name }))
  }
  /** Back to snapshot `name` (the volume's contents as they were then). */
  restore(name: string): Promise<void> {
    return apiStep(`image ${this}: restore ${name}`, () => this.svc.restore({ volume: this.ref, name }))
  }
  deleteSnapshot(name: string): Promise<boolean> {
    return apiStep(`image ${this}: delete snapshot ${name}`, () => this.svc.deleteSnapshot({ volume: this.ref, name }))
  }
  snapshots(): Promise<SnapshotInfo[]> {
    return apiStep(`image ${this}: snapshots`, () => this.svc.snapshots(this.ref))
  }
  info(): Promise<VolumeInfo> {
    return apiStep(`image ${this}: info`, () => this.svc.info(this.ref))
  }
  check(): Promise<CheckResult> {
    return apiStep(`image ${this}: check`, () => this.svc.check(this.ref))
  }
  /** Removes the volume; false when it did not exist. */
  remove(): Promise<boolean> {
    return apiStep(`image ${this}: remove`, () => this.svc.remove(this.ref))
  }

  /** A standalone copy in `format` (the backing chain flattened), in this pool or `options.pool`. */
  convert(name: string, options: CopyOptions & { pool?: Pool } = {}): Promise<Image> {
    const target = options.pool ?? this.pool
    return apiStep(`image ${this}: convert to ${name} (${options.format ?? 'same format'})`, () =>
      this.copyTo(target, name, 'convert', options),
    )
  }

  /**
   * A full, standalone copy into `pool` as `name`. Of a disk a running VM uses: through QEMU's block job
   * (consistent: the disk as it was when the backup started), else with qemu-img. Any host to any host.
   */
  backup(pool: Pool, name: string, options: { onProgress?: OnProgress; format?: ImageFormat } = {}): Promise<Image> {
    return apiStep(`image ${this}: backup to ${pool.volume(name)}`, async () => {
      const user = await liveUser(this.users)
      if (!user) return this.copyTo(pool, name, 'backup', options)
      const source = await user.host.service('storage').info({ pool: this.pool.def, name: this.name })
      const target = pool.sees(user.host) ? pool.on(user.host).volume(name) : undefined
      if (target) {
        await liveBackup(user, source, target.ref, options)
        return pool.volume(name)
      }
      // The target is another host's: back up next to the disk, then copy that across.
      const tmp = this.pool.on(user.host).volume(`${name}.vt-backup`)
      await liveBackup(user, source, tmp.ref, options)
      try {
        await copyAcross(tmp, pool.volume(name), { onProgress: options.onProgress, op: 'backup' })
      } finally {
        await tmp.host
          .service('storage')
          .remove(tmp.ref)
          .catch(() => {})
      }
      return pool.volume(name)
    })
  }

  /** Replaces this volume's contents with `backup`'s (it must not be in use by a running VM). */
  restoreFrom(backup: Image, options: { onProgress?: OnProgress } = {}): Promise<void> {
    return apiStep(`image ${this}: restore from ${backup}`, async () => {
      if (await liveUser(this.users)) throw new Error(`cannot restore ${this}: a running VM uses it (stop it first)`)
      // The volume keeps its format (a raw disk stays raw whatever the backup's format).
      const format = (await this.svc.info(this.ref)).format === 'raw' ? 'raw' : 'qcow2'
      await this.svc.remove(this.ref)
      await backup.copyTo(this.pool, this.name, 'restore', { ...options, format })
    })
  }

  /** @internal */
  async copyTo(pool: Pool, name: string, op: string, o: CopyOptions): Promise<Image> {
    const target = pool.volume(name)
    if (!this.pool.sees(pool.host)) {
      await copyAcross(this, target, { format: o.format, onProgress: o.onProgress, op })
      return target
    }
    await withProgress(pool.host, op, `${pool.name}/${name}`, o.onProgress, id =>
      pool.host.service('storage').convert({
        from: this.ref,
        to: target.ref,
        format: o.format,
        compress: o.compress,
        progress: id,
      }),
    )
    return target
  }
}
