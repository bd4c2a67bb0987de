// Narrowing the planned tree: CLI file filters (`path`, `path:line`), grep over "project file titles", last-failed
// ids, `only`, and the --forbid-only check. Filters remove tests and then drop suites left empty.
import { existsSync } from 'node:fs'
import path from 'node:path'
import { formatLocation } from '../errors.ts'
import { titlePathInFile } from '../loadFile.ts'
import { Suite, type TestCase } from '../model.ts'
import type { TestError } from '../reporterApi.ts'

export interface FileFilter {
  /** Matched against the absolute path of the spec file. */
  re: RegExp
  line?: number
  column?: number
}

/**
 * Parses positional filters. `a/b.vt.ts:12` (or `:12:5`) selects by line; `/re/flags` is a regex; a path starting
 * with ./, ../ or / is resolved against cwd; anything else is a case-insensitive substring of the path.
 */
export function parseFileFilters(args: string[], cwd: string): FileFilter[] {
  return args.map(arg => {
    let text = arg
    let line: number | undefined
    let column: number | undefined
    const m = /^(.*?):(\d+)(?::(\d+))?$/.exec(text)
    if (m?.[1]) {
      text = m[1]
      line = Number(m[2])
      column = m[3] ? Number(m[3]) : undefined
    }
    // An existing path wins over the /regex/ reading (an absolute path also starts with a slash).
    const regex = existsSync(path.resolve(cwd, text)) ? null : /^\/(.+)\/([imsu]*)$/.exec(text)
    let re: RegExp
    if (regex) {
      try {
        re = new RegExp(regex[1], regex[2])
      } catch (e: any) {
        throw Object.assign(new Error(`vt: invalid filter ${arg}: ${e.message}`), { vtUserError: true })
      }
    } else {
      const isPath = text.startsWith('./') || text.startsWith('../') || path.isAbsolute(text) || text === '.'
      const needle = isPath ? path.resolve(cwd, text) : text
      re = new RegExp(escapeRegExp(needle), 'i')
    }
    return { re, line, column }
  })
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** `-g foo` → /foo/i; `-g /foo/s` keeps the given flags. */
export function parseGrep(text: string, flag: string): RegExp {
  const m = /^\/(.+)\/([imsu]*)$/.exec(text)
  try {
    return m ? new RegExp(m[1], m[2]) : new RegExp(text, 'i')
  } catch (e: any) {
    throw Object.assign(new Error(`vt: ${flag} "${text}" is not a valid regular expression: ${e.message}`), {
      vtUserError: true,
    })
  }
}

function locationMatches(filter: FileFilter, loc: { line: number; column: number } | undefined): boolean {
  if (!loc) return false
  if (filter.line === undefined) return true
  return loc.line === filter.line && (filter.column === undefined || loc.column === filter.column)
}

/** Does the test pass at least one file filter (or are there none)? A line may point at the test or a describe. */
export function matchesFileFilters(test: TestCase, file: string, filters: FileFilter[]): boolean {
  if (filters.length === 0) return true
  return filters.some(f => {
    if (!f.re.test(file)) return false
    if (f.line === undefined) return true
    if (locationMatches(f, test.location)) return true
    for (let s: Suite | undefined = test.parent; s && s.type === 'describe'; s = s.parent)
      if (locationMatches(f, s.location)) return true
    return false
  })
}

/** What -g and --grep-invert match against: "project file title path @tags". */
export function grepText(test: TestCase, projectName: string, fileTitle: string): string {
  return [projectName, fileTitle, ...titlePathInFile(test), ...test.tags].filter(Boolean).join(' ')
}

export function matchesGrep(text: string, grep: RegExp | RegExp[] | null | undefined, invert = false): boolean {
  if (!grep) return true
  const list = Array.isArray(grep) ? grep : [grep]
  if (list.length === 0) return true
  const hit = list.some(re => {
    re.lastIndex = 0
    return re.test(text)
  })
  return invert ? !hit : hit
}

/** Keeps only tests for which `keep` is true; removes describe/file suites left without tests. */
export function filterTests(suite: Suite, keep: (test: TestCase) => boolean): void {
  const kept = suite.entries.filter(entry => {
    if (entry instanceof Suite) {
      filterTests(entry, keep)
      return entry.allTests().length > 0 || (entry.type === 'file' && !!entry._loadError)
    }
    return keep(entry)
  })
  suite.entries.splice(0, suite.entries.length, ...kept)
}

/** Every suite and test marked `only` in the tree. */
export function onlyItems(suite: Suite): (Suite | TestCase)[] {
  const out: (Suite | TestCase)[] = []
  const visit = (s: Suite) => {
    if (s.only) out.push(s)
    for (const e of s.entries) {
      if (e instanceof Suite) visit(e)
      else if (e.only) out.push(e)
    }
  }
  visit(suite)
  return out
}

/**
 * Playwright's only semantics: in a suite that contains focused entries, only those stay; a focused suite without
 * focused entries inside keeps all of its tests. Returns false when nothing is focused.
 */
export function filterOnly(suite: Suite): boolean {
  const focusedSuites = suite.suites.filter(child => filterOnly(child) || child.only)
  const focusedTests = suite.tests.filter(t => t.only)
  const focused = new Set<Suite | TestCase>([...focusedSuites, ...focusedTests])
  if (focused.size === 0) return false
  const kept = suite.entries.filter(e => focused.has(e))
  suite.entries.splice(0, suite.entries.length, ...kept)
  return true
}

/** One error listing every test.only / describe.only, for --forbid-only. */
export function forbidOnlyError(items: (Suite | TestCase)[]): TestError {
  const seen = new Set<string>()
  const lines: string[] = []
  for (const item of items) {
    if (!item.location) continue
    const where = formatLocation(item.location)
    if (seen.has(where)) continue
    seen.add(where)
    const kind = item instanceof Suite ? 'test.describe.only' : 'test.only'
    lines.push(`  ${where}  ${kind}(${JSON.stringify(item.title)})`)
  }
  return {
    message: `Error: focused tests are not allowed with --forbid-only (forbidOnly in the config):\n${lines.join('\n')}`,
    location: items.find(i => i.location)?.location,
  }
}
