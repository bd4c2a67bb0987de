// Images a VM can boot by name. Today: 'tiny' (see tiny.ts). Unknown names are a clear error.
import { ensureTiny, type Progress, type TinyImage } from './tiny.ts'

export { cacheDir } from './cache.ts'
export type { CpioEntry } from './cpio.ts'
export { writeCpio } from './cpio.ts'
export type { Progress, TinyImage } from './tiny.ts'
export { TINY_FILES } from './tiny.ts'
export { checkEntry } from './verify.ts'

export const KNOWN_IMAGES = ['tiny'] as const
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

export async function ensureImage(
  name: string,
  opts: { progress?: Progress; force?: boolean } = {},
): Promise<TinyImage> {
  if (name === 'tiny') return ensureTiny(opts)
  throw new UnknownImageError(name)
}
