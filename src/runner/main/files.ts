// Which spec files belong to a project: everything under testDir matching testMatch and not testIgnore.
// String patterns are globs relative to testDir (a pattern without "/" matches the file name at any depth);
// RegExps are tested against the absolute path, as in Playwright.
import path from 'node:path'
import picomatch from 'picomatch'
import { glob } from 'tinyglobby'
import type { FullProject } from '../../config/types.ts'

type Pattern = string | RegExp

function toList(p: Pattern | Pattern[]): Pattern[] {
  return Array.isArray(p) ? p : [p]
}

/** A predicate over absolute file paths under `baseDir`. An empty list matches nothing. */
export function createFileMatcher(patterns: Pattern | Pattern[], baseDir: string): (file: string) => boolean {
  const tests = toList(patterns).map(p => {
    if (p instanceof RegExp) {
      const re = new RegExp(p.source, p.flags.replace('g', ''))
      return (abs: string) => re.test(abs)
    }
    if (path.isAbsolute(p)) {
      const m = picomatch(p, { dot: true })
      return (abs: string) => m(abs)
    }
    const m = picomatch(p, { dot: true, basename: !p.includes('/') })
    return (abs: string) => {
      const rel = path.relative(baseDir, abs).split(path.sep).join('/')
      return !rel.startsWith('../') && m(rel)
    }
  })
  return file => tests.some(t => t(file))
}

const listings = new Map<string, Promise<string[]>>()

/** Every file under `dir` (absolute paths, sorted), skipping node_modules and .git; cached per run. */
export function listFiles(dir: string): Promise<string[]> {
  let list = listings.get(dir)
  if (!list) {
    list = glob(['**/*'], {
      cwd: dir,
      absolute: true,
      dot: false,
      followSymbolicLinks: true,
      ignore: ['**/node_modules/**', '**/.git/**'],
    }).then(files => files.map(f => path.resolve(f)).sort())
    listings.set(dir, list)
  }
  return list
}

export async function collectProjectFiles(project: FullProject): Promise<string[]> {
  const files = await listFiles(project.testDir)
  const match = createFileMatcher(project.testMatch, project.testDir)
  const ignore = createFileMatcher(project.testIgnore, project.testDir)
  return files.filter(f => match(f) && !ignore(f))
}

export function describePatterns(p: Pattern | Pattern[]): string {
  return toList(p)
    .map(x => (x instanceof RegExp ? String(x) : `"${x}"`))
    .join(', ')
}
