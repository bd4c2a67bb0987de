// Volume operations over any pool driver, with qemu-img: everything here works on the driver's `filename`
// (a path or a URL qemu-img opens itself), so a new pool type gets all of it for free. Backing chains are
// checked before an image is read or cloned: every file in the chain must be somewhere the agent may read
// (its roots, the image cache, or what the pool allows), so a planted qcow2 cannot make us read /etc/shadow.
import { realpath } from 'node:fs/promises'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { CheckResult, ImageFormat, SnapshotInfo, VolumeInfo } from '../../src/protocol/storage.ts'
import type { PoolDriver } from './driver.ts'
import { checkVolumeName } from './names.ts'
import { backingChain, imageInfo, QemuImgError, type QemuImgInfo, qemuImg } from './qemuImg.ts'

/** A volume of an opened pool. */
export interface Vol {
  driver: PoolDriver
  name: string
}

export type Progress = (done: number, total: number) => void

export interface VolumeEnv {
  /** Whether a real path (not a URL) is one the agent may read: its roots and the image cache. */
  readable(real: string): boolean
}

const where = (v: Vol) => `volume "${v.name}" in pool "${v.driver.def.name}"`

export async function filenameOf(v: Vol): Promise<string> {
  checkVolumeName(v.driver.def.name, v.name)
  return v.driver.filename(v.name)
}

/** The filename of a volume that must exist (a clear error naming it and the pool's volumes if not). */
export async function existing(v: Vol): Promise<string> {
  const file = await filenameOf(v)
  if (!(await v.driver.exists(v.name))) {
    const names = await v.driver.list().catch(() => [] as string[])
    const some = names.slice(0, 20).join(', ')
    throw new VtError(
      ErrorNames.notFound,
      `${where(v)} does not exist (the pool has ${names.length ? some + (names.length > 20 ? ', ...' : '') : 'no volumes'})`,
      { code: 'ENOENT' },
    )
  }
  return file
}

/** The filename of a volume about to be made: refused when one exists (never overwrite someone's volume). */
export async function fresh(v: Vol): Promise<string> {
  const file = await filenameOf(v)
  if (await v.driver.exists(v.name)) {
    throw new VtError(ErrorNames.badRequest, `${where(v)} already exists: remove it first or pick another name`, {
      code: 'EXISTS',
    })
  }
  return file
}

async function confineChain(v: Vol, file: string, env: VolumeEnv): Promise<QemuImgInfo[]> {
  const chain = await backingChain(file)
  for (const img of chain.slice(1)) {
    const f = img.filename
    let ok: boolean
    if (f.startsWith('/')) {
      const real = await realpath(f).catch(() => f)
      ok = env.readable(real) || (v.driver.allows?.(real) ?? false)
    } else ok = v.driver.allows?.(f) ?? false
    if (!ok) {
      throw new VtError(
        ErrorNames.outsideRoots,
        `${where(v)} has a backing file outside what the agent may read (${f}): refused`,
        { code: 'OUTSIDE_ROOTS' },
      )
    }
  }
  return chain
}

async function toInfo(v: Vol, i: QemuImgInfo): Promise<VolumeInfo> {
  return {
    pool: v.driver.def.name,
    name: v.name,
    filename: i.filename,
    blockdev: await v.driver.blockdev(v.name),
    format: i.format,
    virtualSize: i['virtual-size'],
    actualSize: i['actual-size'] ?? 0,
    ...(i['full-backing-filename'] || i['backing-filename']
      ? { backing: i['full-backing-filename'] ?? i['backing-filename'] }
      : {}),
    snapshots: snapshotsOf(i),
  }
}

function snapshotsOf(i: QemuImgInfo): SnapshotInfo[] {
  return (i.snapshots ?? []).map(s => ({ name: s.name, date: s['date-sec'], vmStateSize: s['vm-state-size'] }))
}

export async function info(v: Vol, env: VolumeEnv): Promise<VolumeInfo> {
  const file = await existing(v)
  const [top] = await confineChain(v, file, env)
  return await toInfo(v, top)
}

export async function createEmpty(v: Vol, size: string, format: ImageFormat): Promise<void> {
  const file = await fresh(v)
  await qemuImg(['create', '-q', '-f', format, file, size])
}

/** A full copy of `from` into `to` (flattening its backing chain), in `format`, with progress. */
export async function copy(
  from: Vol,
  to: Vol,
  env: VolumeEnv,
  o: { format?: ImageFormat; compress?: boolean; size?: string; progress?: Progress; signal?: AbortSignal },
): Promise<void> {
  const src = await existing(from)
  const [top] = await confineChain(from, src, env)
  const dst = await fresh(to)
  const format = o.format ?? (top.format === 'raw' ? 'raw' : 'qcow2')
  const total = top['virtual-size']
  const args = ['convert', '-p', '-U', '-O', format]
  if (o.compress) {
    if (format !== 'qcow2') throw new VtError(ErrorNames.badRequest, 'compress needs format qcow2')
    args.push('-c')
  }
  o.progress?.(0, total)
  await qemuImg([...args, src, dst], {
    onPercent: p => o.progress?.(Math.round((p / 100) * total), total),
    signal: o.signal,
  })
  if (o.size) await qemuImg(['resize', '-q', '-f', format, dst, o.size])
  o.progress?.(total, total)
}

/** A copy of what an NBD URL serves (another host's export of a volume) into `to`. */
export async function copyFromUrl(
  url: string,
  to: Vol,
  o: { format?: ImageFormat; progress?: Progress; signal?: AbortSignal },
): Promise<void> {
  const dst = await fresh(to)
  const total = JSON.parse(await qemuImg(['info', '--output=json', '-f', 'raw', url]))['virtual-size'] as number
  o.progress?.(0, total)
  await qemuImg(['convert', '-p', '-f', 'raw', '-O', o.format ?? 'qcow2', url, dst], {
    onPercent: p => o.progress?.(Math.round((p / 100) * total), total),
    signal: o.signal,
  })
  o.progress?.(total, total)
}

/** A qcow2 overlay on `from`: O(1), whatever the size of `from`. */
export async function clone(from: Vol, to: Vol, env: VolumeEnv): Promise<void> {
  const src = await existing(from)
  const [top] = await confineChain(from, src, env)
  const dst = await fresh(to)
  await qemuImg(['create', '-q', '-f', 'qcow2', '-F', top.format, '-b', src, dst])
}

async function qcow2(v: Vol, what: string, env: VolumeEnv): Promise<{ file: string; top: QemuImgInfo }> {
  const file = await existing(v)
  const [top] = await confineChain(v, file, env)
  if (top.format !== 'qcow2') {
    throw new VtError(ErrorNames.badRequest, `${where(v)} is ${top.format}: ${what} needs a qcow2 volume`, {
      code: 'NOT_QCOW2',
    })
  }
  return { file, top }
}

const inUse = (e: unknown) =>
  e instanceof QemuImgError && /lock/i.test(e.stderr)
    ? new VtError(
        ErrorNames.badRequest,
        `${e.message.trim()} (the volume is in use by a running VM: stop it first, or back it up with image.backup)`,
        { code: 'VOLUME_IN_USE' },
      )
    : e

export async function snapshot(v: Vol, name: string, env: VolumeEnv): Promise<SnapshotInfo[]> {
  const { file, top } = await qcow2(v, 'a snapshot', env)
  if (snapshotsOf(top).some(s => s.name === name)) {
    throw new VtError(ErrorNames.badRequest, `${where(v)} already has a snapshot "${name}"`, { code: 'EXISTS' })
  }
  await qemuImg(['snapshot', '-c', name, file]).catch(e => Promise.reject(inUse(e)))
  return snapshotsOf(await imageInfo(file))
}

async function withSnapshot(v: Vol, name: string, env: VolumeEnv): Promise<string> {
  const { file, top } = await qcow2(v, 'a snapshot', env)
  const all = snapshotsOf(top)
  if (!all.some(s => s.name === name)) {
    throw new VtError(
      ErrorNames.notFound,
      `${where(v)} has no snapshot "${name}" (it has ${all.length ? all.map(s => s.name).join(', ') : 'none'})`,
      { code: 'ENOENT' },
    )
  }
  return file
}

export async function restore(v: Vol, name: string, env: VolumeEnv): Promise<void> {
  const file = await withSnapshot(v, name, env)
  await qemuImg(['snapshot', '-a', name, file]).catch(e => Promise.reject(inUse(e)))
}

export async function deleteSnapshot(v: Vol, name: string, env: VolumeEnv): Promise<boolean> {
  const { top } = await qcow2(v, 'a snapshot', env)
  if (!snapshotsOf(top).some(s => s.name === name)) return false
  await qemuImg(['snapshot', '-d', name, await withSnapshot(v, name, env)]).catch(e => Promise.reject(inUse(e)))
  return true
}

export async function snapshots(v: Vol, env: VolumeEnv): Promise<SnapshotInfo[]> {
  return (await info(v, env)).snapshots
}

export async function check(v: Vol, env: VolumeEnv): Promise<CheckResult> {
  const file = await existing(v)
  await confineChain(v, file, env)
  let out: string
  try {
    out = await qemuImg(['check', '-U', '--output=json', file])
  } catch (e) {
    if (!(e instanceof QemuImgError)) throw e
    // 63: the format has no metadata to check (raw). 2: corruptions, 3: leaks, 1: the check did not finish.
    if (e.exitCode === 63) return { ok: true, corruptions: 0, leaks: 0, checkErrors: 0 }
    if (!e.stdout.trim()) return { ok: false, corruptions: 0, leaks: 0, checkErrors: 1, message: e.stderr.trim() }
    out = e.stdout
  }
  const r = JSON.parse(out) as { corruptions?: number; leaks?: number; 'check-errors'?: number }
  const result = { corruptions: r.corruptions ?? 0, leaks: r.leaks ?? 0, checkErrors: r['check-errors'] ?? 0 }
  const ok = result.corruptions === 0 && result.leaks === 0 && result.checkErrors === 0
  return { ok, ...result, ...(ok ? {} : { message: `qemu-img check: ${JSON.stringify(r)}` }) }
}
