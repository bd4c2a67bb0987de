// Confinement of file paths to the agent's allowed roots. A path is resolved through every symlink that
// exists (realpath of its deepest existing ancestor, plus the components that do not exist yet) and must then
// lie inside a root's real path. `..` and symlinks pointing out are both refused.
import { realpathSync } from 'node:fs'
import { realpath } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path'
import { ErrorNames, VtError } from '../src/protocol/errors.ts'

export class Roots {
  readonly real: string[]

  constructor(roots: string[]) {
    this.real = roots.map(r => {
      if (!isAbsolute(r)) throw new Error(`allowed root "${r}" must be an absolute path`)
      try {
        return realpathSync(r)
      } catch {
        throw new Error(`allowed root "${r}" does not exist: create it or drop --allow-root ${r}`)
      }
    })
  }

  contains(real: string): boolean {
    return this.real.some(root => real === root || real.startsWith(root.endsWith(sep) ? root : root + sep))
  }

  isRoot(real: string): boolean {
    return this.real.includes(real)
  }

  /** The real path `path` refers to (following a final symlink), refused when outside every root. */
  async resolve(path: string): Promise<string> {
    const real = await resolveReal(path)
    if (!this.contains(real)) throw outsideRoots(path, real, this.real)
    return real
  }

  /**
   * The path of the entry itself (a final symlink is not followed): its parent resolved and confined. For
   * remove and rename targets.
   */
  async resolveEntry(path: string): Promise<string> {
    const abs = resolve(path)
    const parent = await resolveReal(dirname(abs))
    const entry = join(parent, basename(abs))
    if (!this.contains(entry)) throw outsideRoots(path, entry, this.real)
    return entry
  }
}

export function outsideRoots(path: string, real: string, roots: string[]): VtError {
  const via = real !== resolve(path) ? ` (resolves to ${real})` : ''
  return new VtError(
    ErrorNames.outsideRoots,
    `path ${path}${via} is outside the agent's allowed roots (${roots.join(', ')}); start the agent with --allow-root to allow another directory`,
    { code: 'OUTSIDE_ROOTS' },
  )
}

/** realpath of the deepest existing ancestor, joined with the rest (which cannot contain symlinks). */
async function resolveReal(path: string): Promise<string> {
  if (!isAbsolute(path))
    throw new VtError(ErrorNames.badRequest, `path ${path} must be absolute`, { code: 'BAD_REQUEST' })
  let current = resolve(path)
  const missing: string[] = []
  for (;;) {
    try {
      const real = await realpath(current)
      return missing.length ? join(real, ...missing.reverse()) : real
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e
      const parent = dirname(current)
      if (parent === current) return resolve(path)
      missing.push(basename(current))
      current = parent
    }
  }
}
