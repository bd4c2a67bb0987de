// Images a VM can boot by name: 'tiny' (tiny.ts, vt's own command channel) and 'debian' (debian.ts, a real
// Debian with qemu-guest-agent and a root disk). Unknown names are a clear error.
import { type DebianImage, ensureDebian } from './debian.ts'
import { ensureTiny, type Progress, type TinyImage } from './tiny.ts'

export { cacheDir } from './cache.ts'
export type { CpioEntry } from './cpio.ts'
export { writeCpio } from './cpio.ts'
export type { DebianImage } from './debian.ts'
export { DEBIAN_FILES, debianEntryDir } from './debian.ts'
export type { Progress, TinyImage } from './tiny.ts'
export { TINY_FILES } from './tiny.ts'
export { checkEntry } from './verify.ts'

export const KNOWN_IMAGES = ['tiny', 'debian'] as const
export type ImageName = (typeof KNOWN_IMAGES)[number]

export class UnknownImageError extends Error {
  override name = 'UnknownImageError'
  constructor(readonly image: string) {
    super(
      `unknown image ${JSON.stringify(image)}: known images are ${KNOWN_IMAGES.map(i => `'${i}'`).join(', ')}; ` +
        "for your own disk use disks: [{ path: '/path/to/disk.qcow2' }]",
    )
  }
}

export type GuestImage = TinyImage | DebianImage

/** How vt talks to a guest of this image: its own channel (tiny) or qemu-guest-agent. */
export function imageChannel(name: string): 'vt' | 'qga' {
  return name === 'debian' ? 'qga' : 'vt'
}

export function ensureImage(name: 'tiny', opts?: { progress?: Progress; force?: boolean }): Promise<TinyImage>
export function ensureImage(name: string, opts?: { progress?: Progress; force?: boolean }): Promise<GuestImage>
export async function ensureImage(
  name: string,
  opts: { progress?: Progress; force?: boolean } = {},
): Promise<GuestImage> {
  if (name === 'tiny') return ensureTiny(opts)
  if (name === 'debian') return ensureDebian(opts)
  throw new UnknownImageError(name)
}
