// The Debian packages vt needs, read from ./debian-packages.txt: the one list behind `vt setup`, `vt doctor` and
// .ci/run (which reads the text file with awk before Node exists on a fresh machine).
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export type PackageNeed = 'vms' | 'optional' | 'tests'

export interface DebianPackage {
  name: string
  /** Commands it provides; the first one shows whether it is installed ('-': none, dpkg-query checks it). */
  commands: string[]
  need: PackageNeed
  why: string
}

export const packagesFile = fileURLToPath(new URL('./debian-packages.txt', import.meta.url))

const needs: readonly PackageNeed[] = ['vms', 'optional', 'tests']

/** Parses the list; a malformed line is an error naming file:line. */
export function parsePackages(text: string, file = packagesFile): DebianPackage[] {
  const out: DebianPackage[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim()
    if (!line) return
    const [name, commands, need, ...why] = line.split(/\s+/)
    const where = `${file}:${i + 1}`
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name)) throw new Error(`${where}: "${name}" is not a Debian package name`)
    if (!commands || !/^[\w.+-]+(,[\w.+-]+)*$/.test(commands))
      throw new Error(`${where}: ${name} needs the commands it provides (comma-separated, no spaces)`)
    if (!needs.includes(need as PackageNeed))
      throw new Error(`${where}: ${name}: who needs it must be one of ${needs.join(', ')}, got "${need ?? ''}"`)
    if (why.length === 0) throw new Error(`${where}: ${name}: say why it is needed`)
    if (out.some(p => p.name === name)) throw new Error(`${where}: ${name} is listed twice`)
    out.push({ name, commands: commands.split(','), need: need as PackageNeed, why: why.join(' ') })
  })
  return out
}

export function debianPackages(): DebianPackage[] {
  return parsePackages(readFileSync(packagesFile, 'utf8'))
}

/** True in a checkout of vt (its tests ship only there, not in the npm package): `vt setup` then prepares them. */
export function isVtCheckout(): boolean {
  return existsSync(fileURLToPath(new URL('../../test/', import.meta.url)))
}
