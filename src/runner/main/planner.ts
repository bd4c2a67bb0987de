// Planning a run: find each project's spec files, load every file once, clone the tree per project and repeat
// index (ids, fixture pools, worker hashes), apply filters (file:line, grep, last-failed, only, shard) and cut the
// result into test groups per project phase. Nothing runs here; the dispatcher takes the groups.
import type { FullConfig, FullProject } from '../../config/types.ts'
import { buildFixturePools } from '../fixtureEngine/index.ts'
import { assignTestIds, cloneSuite, loadTestFile, relativeFileTitle } from '../loadFile.ts'
import { Suite, type TestCase } from '../model.ts'
import type { TestError } from '../reporterApi.ts'
import { collectProjectFiles } from './files.ts'
import {
  type FileFilter,
  filterOnly,
  filterTests,
  forbidOnlyError,
  grepText,
  matchesFileFilters,
  matchesGrep,
  onlyItems,
} from './filters.ts'
import { commonJsSpecsError } from './moduleScope.ts'
import { filterProjects, projectPhases, withDependencies } from './projects.ts'
import { filterForShard } from './shard.ts'
import { createFileGroups, type TestGroup } from './testGroups.ts'

export interface PlanOptions {
  /** `--project` patterns. */
  projects: string[]
  fileFilters: FileFilter[]
  grep?: RegExp
  grepInvert?: RegExp
  /** `--last-failed`: only these test ids (in the filtered projects). */
  onlyTestIds?: Set<string>
}

export interface Phase {
  projects: FullProject[]
  groups: TestGroup[]
}

export interface Plan {
  rootSuite: Suite
  phases: Phase[]
  /** Load errors and fixture validation errors: reported, the run fails, the other files still run. */
  errors: TestError[]
  /** A problem that stops the run before any test (forbidOnly). */
  fatalError?: TestError
  /** Every spec file that was looked at, per project (for "no tests found" messages). */
  filesByProject: Map<FullProject, string[]>
  /** The same before CLI path filters. */
  allFilesByProject: Map<FullProject, string[]>
  /** The projects that run (selected plus their dependencies). */
  projects: FullProject[]
}

function effectiveRetries(test: TestCase, project: FullProject): number {
  for (let s: Suite | undefined = test.parent; s; s = s.parent) if (s.retries !== undefined) return s.retries
  return project.retries
}

function effectiveTimeout(test: TestCase, project: FullProject): number {
  for (let s: Suite | undefined = test.parent; s; s = s.parent) if (s.timeout !== undefined) return s.timeout
  return project.timeout
}

export async function createPlan(config: FullConfig, options: PlanOptions): Promise<Plan> {
  const selected = filterProjects(config.projects, options.projects)
  const projects = withDependencies(config.projects, selected)
  // CLI filters apply to the projects the user asked for; dependencies run whole (only their own grep applies).
  const dependencyNames = new Set(projects.flatMap(p => p.dependencies))
  const filtered = new Set(selected.filter(p => !p.name || !dependencyNames.has(p.name)))

  const filesByProject = new Map<FullProject, string[]>()
  const allFilesByProject = new Map<FullProject, string[]>()
  for (const project of projects) {
    let files = await collectProjectFiles(project)
    allFilesByProject.set(project, files)
    if (filtered.has(project) && options.fileFilters.length > 0)
      files = files.filter(f => options.fileFilters.some(ff => ff.re.test(f)))
    filesByProject.set(project, files)
  }

  // Load each file once, in a stable order.
  const loaded = new Map<string, Suite>()
  const allFiles = [...new Set([...filesByProject.values()].flat())].sort()
  const cjs = commonJsSpecsError(allFiles)
  if (cjs) throw Object.assign(new Error(cjs), { vtUserError: true })
  for (const file of allFiles) loaded.set(file, await loadTestFile(file, config.rootDir))

  const errors: TestError[] = []
  const reportedLoadErrors = new Set<string>()
  const rootSuite = new Suite('', 'root')
  for (const project of projects) {
    const projectSuite = new Suite(project.name, 'project')
    projectSuite._project = project
    rootSuite._addSuite(projectSuite)
    for (let repeatEachIndex = 0; repeatEachIndex < project.repeatEach; repeatEachIndex++) {
      for (const file of filesByProject.get(project) ?? []) {
        const original = loaded.get(file)!
        if (original._loadError) {
          if (!reportedLoadErrors.has(file)) {
            reportedLoadErrors.add(file)
            errors.push(original._loadError)
          }
          continue
        }
        const fileSuite = cloneSuite(original)
        assignTestIds(fileSuite, project.id, repeatEachIndex)
        const poolErrors = buildFixturePools(fileSuite, project, config)
        if (poolErrors.length > 0) {
          const key = `${file}\0${poolErrors.map(e => e.message).join('\0')}`
          if (!reportedLoadErrors.has(key)) {
            reportedLoadErrors.add(key)
            errors.push(...poolErrors)
          }
          continue
        }
        for (const test of fileSuite.allTests()) {
          test.retries = effectiveRetries(test, project)
          if (!test.timeout) test.timeout = effectiveTimeout(test, project)
        }
        projectSuite._addSuite(fileSuite)
      }
    }
  }

  // Test filters.
  for (const projectSuite of rootSuite.suites) {
    const project = projectSuite._project!
    const cliFiltered = filtered.has(project)
    for (const fileSuite of projectSuite.suites) {
      const file = fileSuite._file!
      const fileTitle = relativeFileTitle(file, config.rootDir)
      filterTests(fileSuite, test => {
        const text = grepText(test, project.name, fileTitle)
        if (!matchesGrep(text, project.grep) || !matchesGrep(text, project.grepInvert, true)) return false
        if (!cliFiltered) return true
        if (!matchesFileFilters(test, file, options.fileFilters)) return false
        if (options.grep && !matchesGrep(text, options.grep)) return false
        if (options.grepInvert && !matchesGrep(text, options.grepInvert, true)) return false
        if (options.onlyTestIds && !options.onlyTestIds.has(test.id)) return false
        return true
      })
    }
    filterTests(projectSuite, () => true)
  }

  // only / forbidOnly, across the whole run.
  let fatalError: TestError | undefined
  const focused = onlyItems(rootSuite)
  if (focused.length > 0) {
    if (config.forbidOnly) fatalError = forbidOnlyError(focused)
    else filterOnly(rootSuite)
  }

  // Groups per phase; the shard takes a slice of the filtered projects' groups (dependencies run in every shard).
  const phases: Phase[] = projectPhases(projects).map(phaseProjects => ({ projects: phaseProjects, groups: [] }))
  const projectSuites = new Map(rootSuite.suites.map(s => [s._project!, s]))
  const shardable: TestGroup[] = []
  for (const phase of phases) {
    for (const project of phase.projects) {
      const projectSuite = projectSuites.get(project)!
      for (const fileSuite of projectSuite.suites) {
        const groups = createFileGroups(fileSuite, project)
        phase.groups.push(...groups)
        if (filtered.has(project)) shardable.push(...groups)
      }
    }
  }
  if (config.shard) {
    const kept = new Set(filterForShard(shardable, config.shard))
    const dropped = new Set(shardable.filter(g => !kept.has(g)).flatMap(g => g.tests))
    const shardableSet = new Set(shardable)
    for (const phase of phases) phase.groups = phase.groups.filter(g => !shardableSet.has(g) || kept.has(g))
    filterTests(rootSuite, t => !dropped.has(t))
  }
  return { rootSuite, phases, errors, fatalError, filesByProject, allFilesByProject, projects }
}
