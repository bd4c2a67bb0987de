#!/usr/bin/env node
// The import boundaries of vt's three sides, checked on every `npm test` (like Playwright's DEPS lists):
//   shared      src/protocol/ (the agent contract: services, wire types, errors), src/util/ (side-neutral helpers)
//   host side   agent/ (everything `vt agent` runs)
//   controller  the rest of src/, fixtures/, reporters/
// A module may import only what the first rule matching its path allows, and no import cycle may exist
// (type-only imports count: they tie modules together just the same). Exit 1 with every violation listed.
// Usage: node scripts/check-deps.mjs [--root DIR]   (tests point --root at a temp tree)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const argRoot = process.argv.indexOf('--root')
const root =
  argRoot > 0
    ? path.resolve(process.argv[argRoot + 1])
    : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/**
 * Rules, first match wins: `from` is a path prefix of the importing module; `allow` lists path prefixes it may
 * import (npm packages and node: builtins are always allowed); `deny` lists prefixes it must not import.
 */
export const RULES = [
  { from: 'src/util/', allow: ['src/util/'], why: 'side-neutral helpers import nothing of either side' },
  { from: 'src/protocol/', allow: ['src/protocol/', 'src/util/'], why: 'the shared contract stands alone' },
  {
    from: 'agent/',
    allow: ['agent/', 'src/protocol/', 'src/util/'],
    why: 'host code talks to the controller only through the contract',
  },
  { from: 'src/cli/commands/', deny: [], why: 'the CLI is the composition root: one binary hosts both sides' },
  {
    from: 'src/config/',
    allow: ['src/config/', 'src/protocol/', 'src/util/'],
    why: 'the config is read by everything and reads nothing above it',
  },
  { from: 'src/', deny: ['agent/'], why: 'controller code never loads host code (it reaches hosts over RPC)' },
  { from: 'fixtures/', deny: ['agent/'], why: 'fixtures are controller code' },
  { from: 'reporters/', deny: ['agent/'], why: 'reporters run in the controller' },
]

const SCANNED = ['src', 'agent', 'fixtures', 'reporters']
const EXT = /\.(ts|mts|js|mjs)$/

function walk(dir, out = []) {
  if (!existsSync(dir)) return out
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name)
    if (e.isDirectory()) walk(full, out)
    else if (EXT.test(e.name) && !e.name.endsWith('.d.ts')) out.push(full)
  }
  return out
}

function resolveImport(fromFile, spec) {
  if (!spec.startsWith('.')) return undefined // a package or node: builtin
  const base = path.resolve(path.dirname(fromFile), spec)
  for (const candidate of [base, `${base}.ts`, path.join(base, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate
  }
  return base // unresolved: tsc reports it; the rules still apply to the path
}

function importsOf(file) {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
  return info.importedFiles.map(f => f.fileName)
}

const rel = f => path.relative(root, f).split(path.sep).join('/')

export function check() {
  const files = SCANNED.flatMap(d => walk(path.join(root, d)))
  const graph = new Map()
  const violations = []
  for (const file of files) {
    const from = rel(file)
    const rule = RULES.find(r => from.startsWith(r.from))
    const edges = []
    for (const spec of importsOf(file)) {
      const target = resolveImport(file, spec)
      if (!target) continue
      const to = rel(target)
      edges.push(to)
      if (!rule) continue
      const allowed = rule.allow
        ? rule.allow.some(p => to.startsWith(p))
        : !(rule.deny ?? []).some(p => to.startsWith(p))
      if (!allowed) violations.push(`${from} imports ${to} ('${spec}'): ${rule.from}* ${ruleText(rule)} (${rule.why})`)
    }
    graph.set(from, edges)
  }
  return { violations, cycles: cycles(graph), files: files.length }
}

function ruleText(rule) {
  return rule.allow
    ? `may import only ${rule.allow.map(p => `${p}*`).join(', ')}`
    : `must not import ${rule.deny.join(', ')}*`
}

/** Tarjan's strongly connected components: every component of more than one module (or a self-import) is a cycle. */
function cycles(graph) {
  let index = 0
  const stack = []
  const on = new Set()
  const idx = new Map()
  const low = new Map()
  const out = []
  const visit = v => {
    idx.set(v, index)
    low.set(v, index++)
    stack.push(v)
    on.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!idx.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v), low.get(w)))
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)))
    }
    if (low.get(v) === idx.get(v)) {
      const scc = []
      let w
      do {
        w = stack.pop()
        on.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort())
    }
  }
  for (const v of graph.keys()) if (!idx.has(v)) visit(v)
  return out
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('check-deps.mjs')) {
  const { violations, cycles: found, files } = check()
  for (const v of violations) console.error(`✘ ${v}`)
  for (const c of found) console.error(`✘ import cycle: ${c.join(' ↔ ')}`)
  if (violations.length || found.length) {
    console.error(
      `\n${violations.length} import(s) across a boundary, ${found.length} cycle(s). The sides and their rules are in ` +
        'scripts/check-deps.mjs and docs/architecture.md: move the shared part into src/protocol/ (or src/util/), ' +
        'or reach the other side over the agent RPC.',
    )
    process.exit(1)
  }
  console.log(`✓ import boundaries and cycles: ${files} modules checked`)
}
