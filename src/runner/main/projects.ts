// Project selection (`--project`, with * wildcards) and ordering by dependencies.
import type { FullProject } from '../../config/types.ts'

export class ProjectSelectionError extends Error {
  readonly vtUserError = true
}

function wildcardToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map(part => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*')
  return new RegExp(`^${body}$`, 'i')
}

/**
 * The projects named by `--project` patterns (case-insensitive, `*` matches anything), in config order.
 * An empty pattern list selects every project. A pattern that matches nothing is an error listing the projects.
 */
export function filterProjects(projects: FullProject[], patterns: string[]): FullProject[] {
  if (patterns.length === 0) return projects
  const matchers = patterns.map(p => ({ pattern: p, re: wildcardToRegExp(p.trim()) }))
  const unmatched = matchers.filter(m => !projects.some(p => m.re.test(p.name)))
  if (unmatched.length > 0) {
    const names = projects.map(p => (p.name ? `"${p.name}"` : '(unnamed)')).join(', ')
    const what = unmatched.map(m => `"${m.pattern}"`).join(', ')
    throw new ProjectSelectionError(
      `vt: no project matches ${what}. Available projects: ${names}${projects.every(p => !p.name) ? ' (give projects a name in vt.config.ts to select them)' : ''}`,
    )
  }
  return projects.filter(p => matchers.some(m => m.re.test(p.name)))
}

/** The selected projects plus every project they depend on, transitively, in config order. */
export function withDependencies(all: FullProject[], selected: FullProject[]): FullProject[] {
  const byName = new Map(all.filter(p => p.name).map(p => [p.name, p]))
  const keep = new Set<FullProject>()
  const visit = (p: FullProject) => {
    if (keep.has(p)) return
    keep.add(p)
    for (const dep of p.dependencies) {
      const d = byName.get(dep)
      if (d) visit(d)
    }
  }
  selected.forEach(visit)
  return all.filter(p => keep.has(p))
}

/**
 * Splits projects into phases: each phase holds the projects whose dependencies all ran in earlier phases.
 * (The config loader already rejected unknown dependencies and cycles.)
 */
export function projectPhases(projects: FullProject[]): FullProject[][] {
  const byName = new Map(projects.filter(p => p.name).map(p => [p.name, p]))
  const done = new Set<FullProject>()
  const phases: FullProject[][] = []
  let left = [...projects]
  while (left.length > 0) {
    const ready = left.filter(p => p.dependencies.every(d => !byName.has(d) || done.has(byName.get(d)!)))
    if (ready.length === 0) throw new Error(`vt: dependency cycle among projects ${left.map(p => p.name).join(', ')}`)
    phases.push(ready)
    for (const p of ready) done.add(p)
    left = left.filter(p => !done.has(p))
  }
  return phases
}

/** All projects that `project` depends on, transitively. */
export function transitiveDependencies(all: FullProject[], project: FullProject): FullProject[] {
  const byName = new Map(all.filter(p => p.name).map(p => [p.name, p]))
  const out = new Set<FullProject>()
  const visit = (p: FullProject) => {
    for (const dep of p.dependencies) {
      const d = byName.get(dep)
      if (d && !out.has(d)) {
        out.add(d)
        visit(d)
      }
    }
  }
  visit(project)
  return [...out]
}
