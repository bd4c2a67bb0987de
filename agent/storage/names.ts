// Volume names: plain file names inside a pool. A name is checked before any driver sees it, so nothing made
// from it (a path, a URL) can leave the pool: no '/', no leading '.', hence no '..' and no hidden files.
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}$/

export function checkVolumeName(pool: string, name: string): string {
  if (!NAME.test(name)) {
    throw new VtError(
      ErrorNames.badRequest,
      `volume name ${JSON.stringify(name)} in pool "${pool}" is not allowed: a volume is a plain name inside its pool ` +
        "(letters, digits, '.', '_', '+', '-', starting with a letter or digit; no '/', no '..', at most 200)",
      { code: 'BAD_VOLUME_NAME' },
    )
  }
  return name
}

/** Temporary names the agent uses while writing a volume; never listed. */
export const TEMP_SUFFIX = '.vt-partial'
