// Specs must load as ES modules: a spec loaded as CommonJS gets its own copy of vt's modules, and its test() calls
// land nowhere. TypeScript specs always load as ES modules (src/runner/loader/hooks.js), whatever the project's
// package.json says; a .js spec follows Node's rules, and .cts/.cjs are CommonJS by name. Rather than let those
// fail with a puzzling load error, the planner stops with what to change.
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'

interface Scope {
  packageJson?: string
  /** The "type" field as written, undefined when absent or unreadable. */
  type?: unknown
}

const scopeCache = new Map<string, Scope>()

/** The package scope of a directory: its nearest package.json and its "type". */
export function packageScope(dir: string): Scope & { esm: boolean } {
  let result = scopeCache.get(dir)
  if (!result) {
    const pkg = path.join(dir, 'package.json')
    if (existsSync(pkg)) {
      let type: unknown
      try {
        type = JSON.parse(readFileSync(pkg, 'utf8'))?.type
      } catch {
        type = undefined
      }
      result = { packageJson: pkg, type }
    } else {
      const parent = path.dirname(dir)
      result = parent === dir ? {} : packageScope(parent)
    }
    scopeCache.set(dir, result)
  }
  return { ...result, esm: result.type === 'module' }
}

/** An error message when some spec files would load as CommonJS, else undefined. */
export function commonJsSpecsError(files: string[]): string | undefined {
  const offenders = new Map<string, { list: string[]; type?: unknown }>()
  for (const f of files) {
    if (/\.(cts|cjs)$/.test(f)) {
      offenders.set(f, { list: [f] })
      continue
    }
    if (!/\.(js|jsx)$/.test(f)) continue
    const scope = packageScope(path.dirname(f))
    if (scope.esm) continue
    const key = scope.packageJson ?? '(no package.json)'
    const entry = offenders.get(key) ?? { list: [], type: scope.type }
    entry.list.push(f)
    offenders.set(key, entry)
  }
  if (offenders.size === 0) return undefined
  const lines = [...offenders].map(([where, { list, type }]) => {
    const first = `${list[0]}${list.length > 1 ? ` and ${list.length - 1} more` : ''}`
    if (/\.(cts|cjs)$/.test(where)) return `  ${where}: .cts/.cjs specs are CommonJS; rename it to .ts or .mts`
    const says =
      where === '(no package.json)'
        ? 'has no package.json above it'
        : type === undefined
          ? `is in ${where}, which has no "type"`
          : `is in ${where}, which says "type": ${JSON.stringify(type)}`
    return `  ${first} ${says}: rename the spec to .ts or .mjs, or set "type": "module" there`
  })
  return `vt: spec files must load as ES modules (import { test } from 'vmtest-cluster'), but these JavaScript specs would load as CommonJS:\n${lines.join('\n')}`
}
