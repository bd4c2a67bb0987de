// Specs must load as ES modules: a spec loaded as CommonJS (a .ts/.js file whose nearest package.json lacks
// "type": "module") gets its own copy of vt's modules, and its test() calls land nowhere. Rather than let every
// file fail with a puzzling load error, the planner stops with what to change.
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'

const scopeCache = new Map<string, { packageJson?: string; esm: boolean }>()

/** The package scope of a directory: its nearest package.json and whether .js/.ts files in it are ESM. */
export function packageScope(dir: string): { packageJson?: string; esm: boolean } {
  const cached = scopeCache.get(dir)
  if (cached) return cached
  let result: { packageJson?: string; esm: boolean }
  const pkg = path.join(dir, 'package.json')
  if (existsSync(pkg)) {
    let type: unknown
    try {
      type = JSON.parse(readFileSync(pkg, 'utf8'))?.type
    } catch {
      type = undefined
    }
    result = { packageJson: pkg, esm: type === 'module' }
  } else {
    const parent = path.dirname(dir)
    result = parent === dir ? { esm: false } : packageScope(parent)
  }
  scopeCache.set(dir, result)
  return result
}

/** An error message when some spec files would load as CommonJS, else undefined. */
export function commonJsSpecsError(files: string[]): string | undefined {
  const bad = files.filter(f => /\.(ts|tsx|js|jsx|cts|cjs)$/.test(f) && !/\.(mts|mjs)$/.test(f))
  const offenders = new Map<string, string[]>()
  for (const f of bad) {
    if (/\.(cts|cjs)$/.test(f)) {
      offenders.set(f, [f])
      continue
    }
    const scope = packageScope(path.dirname(f))
    if (scope.esm) continue
    const key = scope.packageJson ?? '(no package.json)'
    offenders.set(key, [...(offenders.get(key) ?? []), f])
  }
  if (offenders.size === 0) return undefined
  const lines = [...offenders].map(([where, list]) => {
    const first = `${list[0]}${list.length > 1 ? ` and ${list.length - 1} more` : ''}`
    if (where === '(no package.json)')
      return `  ${first}: no package.json above it; create one with { "type": "module" } in the project root`
    if (/\.(cts|cjs)$/.test(where)) return `  ${where}: .cts/.cjs specs are CommonJS; rename it to .ts or .mts`
    return `  ${first}: ${where} has no "type": "module"; add it`
  })
  return `vt: spec files must load as ES modules (import { test } from 'vt'), but these would load as CommonJS:\n${lines.join('\n')}`
}
