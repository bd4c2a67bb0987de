// `vt test`: load the config, plan, then run phase by phase (projects after their dependencies) through the
// dispatcher, feeding reporters; global setup/teardown, clusters, Ctrl-C, global timeout, exit code and
// `.last-run.json` live here.
import { existsSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { loadConfig, resolveConfigFile, resolveWorkers } from '../../config/load.ts'
import type { FullConfig, FullProject } from '../../config/types.ts'
import { messageOf, stringProp } from '../../util/thrown.ts'
import type { ConfigOverrides } from '../ipc.ts'
import type { Suite, TestCase } from '../model.ts'
import type { FullResult, Reporter, TestError } from '../reporterApi.ts'
import { newTestResult } from '../results.ts'
import { ClusterManager } from './clusters.ts'
import { DebugPauses } from './debugPauses.ts'
import { Dispatcher } from './dispatcher.ts'
import { FailureTracker } from './failureTracker.ts'
import { describePatterns } from './files.ts'
import { parseFileFilters, parseGrep } from './filters.ts'
import { readLastRun, writeLastRun } from './lastRun.ts'
import type { RunOptions } from './options.ts'
import { createPlan, type Plan } from './planner.ts'
import { transitiveDependencies } from './projects.ts'
import { registerConfigSecrets } from './redact.ts'
import { createReporters, Multiplexer } from './reporters.ts'
import { ProjectResources } from './resources.ts'

export function userError(message: string): Error {
  return Object.assign(new Error(message), { vtUserError: true })
}

/** Where `.last-run.json` lives: the output dir (all projects share it unless they set their own). */
export function runOutputDir(config: FullConfig): string {
  return config.projects[0]?.outputDir ?? path.join(config.rootDir, 'test-results')
}

/** Echoes test output to the terminal when no reporter prints to stdio itself (e.g. only junit to a file). */
class StdioEcho implements Reporter {
  printsToStdio(): boolean {
    return false
  }
  onStdOut(chunk: string | Buffer): void {
    process.stdout.write(chunk)
  }
  onStdErr(chunk: string | Buffer): void {
    process.stderr.write(chunk)
  }
}

function relativeLocation(config: FullConfig, test: TestCase): string {
  const file = path.relative(config.rootDir, test.location.file).split(path.sep).join('/')
  return `${file}:${test.location.line}:${test.location.column}`
}

function titleInFile(test: TestCase): string[] {
  const out: string[] = []
  for (let s: Suite | undefined = test.parent; s && s.type === 'describe'; s = s.parent)
    if (s.title) out.unshift(s.title)
  return [...out, test.title]
}

function printList(config: FullConfig, plan: Plan): void {
  const lines: string[] = ['Listing tests:']
  const files = new Set<string>()
  let count = 0
  for (const test of plan.rootSuite.allTests()) {
    const project = test.parent.project()
    const parts = [
      ...(project?.name ? [`[${project.name}]`] : []),
      relativeLocation(config, test),
      ...titleInFile(test),
    ]
    lines.push(`  ${parts.join(' › ')}`)
    files.add(test.location.file)
    count++
  }
  lines.push(
    `Total: ${count} ${count === 1 ? 'test' : 'tests'} in ${files.size} ${files.size === 1 ? 'file' : 'files'}`,
  )
  process.stdout.write(`${lines.join('\n')}\n`)
}

function formatErrorForTerminal(error: TestError): string {
  return [error.message, error.snippet].filter(Boolean).join('\n')
}

function noTestsMessage(config: FullConfig, plan: Plan, options: RunOptions): string {
  const lines = ['vt: no tests found.']
  for (const project of plan.projects) {
    const files = plan.allFilesByProject.get(project) ?? []
    const name = project.name ? `project "${project.name}": ` : ''
    lines.push(
      `  ${name}looked in ${project.testDir}${existsSync(project.testDir) ? '' : ' (which does not exist)'} for ${describePatterns(project.testMatch)}` +
        `${[project.testIgnore].flat().length ? ` (ignoring ${describePatterns(project.testIgnore)})` : ''}: ${files.length} ${files.length === 1 ? 'file' : 'files'}`,
    )
  }
  const filters = [
    ...options.filters.map(f => `filter ${f}`),
    ...(options.grep ? [`--grep ${options.grep}`] : []),
    ...(options.grepInvert ? [`--grep-invert ${options.grepInvert}`] : []),
    ...(options.lastFailed ? ['--last-failed'] : []),
    ...(config.shard ? [`--shard ${config.shard.current}/${config.shard.total}`] : []),
  ]
  if (filters.length) lines.push(`  with ${filters.join(', ')}`)
  lines.push('  Use --pass-with-no-tests to succeed anyway.')
  return lines.join('\n')
}

async function runGlobalSetup(config: FullConfig): Promise<(() => Promise<unknown>) | undefined> {
  if (!config.globalSetup) return undefined
  const fn = await importDefault(config.globalSetup, 'globalSetup')
  const teardown = await fn(config)
  return typeof teardown === 'function' ? async () => teardown(config) : undefined
}

async function importDefault(file: string, what: string): Promise<(config: FullConfig) => unknown> {
  const mod = await import(pathToFileURL(file).href)
  let fn = mod?.default
  if (fn && typeof fn === 'object' && typeof fn.default === 'function') fn = fn.default
  if (typeof fn !== 'function') throw new Error(`${what} ${file} must default-export a function`)
  return fn
}

function toTestError(e: unknown, prefix: string): TestError {
  const stack = stringProp(e, 'stack')
  return { message: `${prefix}${messageOf(e)}`, ...(stack ? { stack } : {}) }
}

export async function runTests(options: RunOptions): Promise<number> {
  const overrides: ConfigOverrides = { ...options.overrides }
  if (options.workers !== undefined) overrides.workers = resolveWorkers(options.workers)
  if (overrides.outputDir) overrides.outputDir = path.resolve(options.cwd, overrides.outputDir)
  const configFile = resolveConfigFile(options.cwd, options.config)
  const config = await loadConfig(configFile, overrides)
  if (options.quiet) config.quiet = true
  registerConfigSecrets(config)

  const fileFilters = parseFileFilters(options.filters, options.cwd)
  const grep = options.grep !== undefined ? parseGrep(options.grep, '--grep') : undefined
  const grepInvert = options.grepInvert !== undefined ? parseGrep(options.grepInvert, '--grep-invert') : undefined
  const outputDir = runOutputDir(config)

  let onlyTestIds: Set<string> | undefined
  if (options.lastFailed) {
    const last = await readLastRun(outputDir)
    if (!last) {
      process.stderr.write(`vt: --last-failed: no ${path.join(outputDir, '.last-run.json')} yet, running all tests\n`)
    } else {
      onlyTestIds = new Set([...last.failedTests, ...last.notRunTests])
      if (onlyTestIds.size === 0) {
        process.stdout.write('vt: --last-failed: every test passed in the last run, nothing to run\n')
        return 0
      }
    }
  }

  const plan = await createPlan(config, { projects: options.projects, fileFilters, grep, grepInvert, onlyTestIds })

  if (options.list) {
    for (const error of plan.errors) process.stderr.write(`${formatErrorForTerminal(error)}\n`)
    if (plan.fatalError) {
      process.stderr.write(`${formatErrorForTerminal(plan.fatalError)}\n`)
      return 1
    }
    printList(config, plan)
    return plan.errors.length > 0 ? 1 : 0
  }

  const total = plan.rootSuite.allTests().length
  if (total === 0 && plan.errors.length === 0 && !plan.fatalError) {
    if (config.passWithNoTests) {
      process.stdout.write('vt: no tests found (--pass-with-no-tests)\n')
      return 0
    }
    throw userError(noTestsMessage(config, plan, options))
  }

  const reporters = await createReporters(config.reporter, {
    rootDir: config.rootDir,
    outputDir,
    configDir: config.configFile ? path.dirname(config.configFile) : config.rootDir,
  })
  const reporter = new Multiplexer(reporters)
  if (!reporter.printsToStdio()) reporter.reporters.push(new StdioEcho())

  const startTime = new Date()
  const failures = new FailureTracker(config.maxFailures)
  // Per-project resources, in set-up order: more kinds (pools, networks) join this list, not the dispatcher.
  const resources = new ProjectResources([new ClusterManager(config)])
  const debug = config.debug
    ? new DebugPauses({ rootDir: config.rootDir, stdin: process.stdin, out: process.stderr })
    : undefined
  const dispatcher = new Dispatcher({
    config,
    serializedConfig: { configFile: config.configFile || config.rootDir, overrides },
    reporter,
    failures,
    resources,
    env: process.env,
    debug,
  })

  let sigints = 0
  let timedOut = false
  const onSignal = () => {
    sigints++
    if (sigints === 1) {
      process.stderr.write(
        '\nvt: interrupting: finishing running tests and tearing down fixtures (Ctrl-C again to kill)\n',
      )
      dispatcher.interrupt()
      debug?.interrupt()
    } else if (sigints === 2) {
      process.stderr.write('\nvt: killing workers (Ctrl-C again to exit now)\n')
      dispatcher.kill()
    } else {
      process.exit(130)
    }
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const globalTimer =
    config.globalTimeout > 0
      ? setTimeout(() => {
          // Reporters announce it from the 'timedout' status.
          timedOut = true
          dispatcher.interrupt()
        }, config.globalTimeout)
      : undefined

  const skippedForDependency = new Set<TestCase>()
  let globalTeardown: (() => Promise<unknown>) | undefined
  try {
    reporter.onBegin(config, plan.rootSuite)
    for (const error of plan.errors) {
      failures.onGlobalError()
      reporter.onError(error)
    }
    if (plan.fatalError) {
      failures.onGlobalError()
      reporter.onError(plan.fatalError)
    } else {
      let setupOk = true
      try {
        globalTeardown = await runGlobalSetup(config)
      } catch (e) {
        setupOk = false
        failures.onGlobalError()
        reporter.onError(toTestError(e, `Error in globalSetup (${config.globalSetup}): `))
      }
      if (setupOk) await runPhases(plan, dispatcher, reporter, skippedForDependency)
    }
  } finally {
    if (globalTimer) clearTimeout(globalTimer)
    await dispatcher.shutdown()
    await resources.tearDownAll()
    for (const teardown of [
      globalTeardown,
      config.globalTeardown
        ? async () => (await importDefault(config.globalTeardown!, 'globalTeardown'))(config)
        : undefined,
    ]) {
      if (!teardown || dispatcher.wasKilled) continue
      try {
        await teardown()
      } catch (e) {
        failures.onGlobalError()
        reporter.onError(toTestError(e, 'Error in global teardown: '))
      }
    }
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }

  const tests = plan.rootSuite.allTests()
  const failed = tests.filter(t => t.outcome() === 'unexpected')
  const flaky = tests.filter(t => t.outcome() === 'flaky')
  let status: FullResult['status'] = 'passed'
  if (sigints > 0) status = 'interrupted'
  else if (timedOut) status = 'timedout'
  else if (failed.length > 0 || failures.globalErrors > 0 || (config.failOnFlakyTests && flaky.length > 0))
    status = 'failed'
  const override = await reporter.onEnd({ status, startTime, duration: Date.now() - startTime.getTime() })
  if (override?.status) status = override.status
  await reporter.onExit()

  const notRun = tests.filter(
    t => skippedForDependency.has(t) || t.results.length === 0 || t.results.every(r => r.status === 'interrupted'),
  )
  try {
    await writeLastRun(outputDir, {
      status,
      failedTests: failed.filter(t => !notRun.includes(t)).map(t => t.id),
      notRunTests: notRun.map(t => t.id),
    })
  } catch (e: any) {
    process.stderr.write(`vt: could not write ${outputDir}/.last-run.json: ${e?.message ?? e}\n`)
  }
  if (status === 'interrupted') return 130
  return status === 'passed' ? 0 : 1
}

/** Runs the phases in order; a project whose dependency failed reports its tests as skipped. */
async function runPhases(
  plan: Plan,
  dispatcher: Dispatcher,
  reporter: Multiplexer,
  skippedForDependency: Set<TestCase>,
): Promise<void> {
  const projectSuites = new Map(plan.rootSuite.suites.map(s => [s._project!, s]))
  const failedProjects = new Set<FullProject>()
  for (const phase of plan.phases) {
    if (dispatcher.isInterrupted) break
    const blocked = new Map<FullProject, FullProject>()
    for (const project of phase.projects) {
      const failedDep = transitiveDependencies(plan.projects, project).find(d => failedProjects.has(d))
      if (failedDep) blocked.set(project, failedDep)
    }
    for (const [project, dep] of blocked) {
      for (const test of projectSuites.get(project)?.allTests() ?? []) {
        skippedForDependency.add(test)
        const result = newTestResult({
          retry: 0,
          workerIndex: -1,
          parallelIndex: -1,
          startTime: new Date(),
          duration: 0,
          annotations: [{ type: 'skip', description: `dependency project "${dep.name}" failed` }],
        })
        test.results.push(result)
        reporter.onTestBegin(test, result)
        reporter.onTestEnd(test, result)
      }
    }
    const groups = phase.groups.filter(g => ![...blocked.keys()].some(p => p.id === g.projectId))
    await dispatcher.run(groups)
    for (const project of phase.projects) {
      const suite = projectSuites.get(project)
      if (suite?.allTests().some(t => t.outcome() === 'unexpected' || t.results.length === 0))
        failedProjects.add(project)
    }
  }
}
