// Finds and loads `vt.config.ts`, validates it (./schema.ts) and resolves it into a FullConfig with CLI overrides
// applied. The worker calls loadConfig too, with the same file and overrides, so this must stay deterministic
// and free of side effects: no writes, no reads besides the config module itself and its source text.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { findKeyLine, formatKeyPath, type KeyPath } from './keyPath.ts'
import type { Config, ConfigOverrides, FullConfig, FullProject, ProjectConfig, ReporterDescription } from './types.ts'

export type { ConfigOverrides } from './types.ts'

export const configFileNames = ['vt.config.ts', 'vt.config.js', 'vt.config.mts', 'vt.config.mjs']
export const defaultTestMatch = '**/*.vt.ts'
export const defaultTimeout = 30_000
export const defaultExpectTimeout = 5_000

/** A config problem the user must fix; the CLI prints its message without a stack. */
export class ConfigError extends Error {
  readonly issues: { path: KeyPath; message: string; line?: number }[]
  constructor(message: string, issues: { path: KeyPath; message: string; line?: number }[] = []) {
    super(message)
    this.name = 'ConfigError'
    this.issues = issues
  }
}

/**
 * Which config to use. `cliPath` (from `-c`) may name a file or a directory. Returns the absolute path of the
 * config file, or, when there is none, of the directory to run in (defaults apply, testDir = that directory).
 */
export function resolveConfigFile(cwd: string, cliPath?: string): string {
  const base = cliPath ? path.resolve(cwd, cliPath) : cwd
  if (cliPath && !existsSync(base)) throw new ConfigError(`vt: config file not found: ${base}`)
  if (!statSync(base).isDirectory()) return base
  for (const name of configFileNames) {
    const candidate = path.join(base, name)
    if (existsSync(candidate)) return candidate
  }
  return base
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory()
  } catch {
    return false
  }
}

/**
 * Loads and resolves the config. `configFile` is what resolveConfigFile returned: a config file, or a directory
 * to run without one ('' means the current directory).
 */
export async function loadConfig(
  configFile: string,
  overrides: ConfigOverrides = {},
  options: LoadOptions = {},
): Promise<FullConfig> {
  const target = path.resolve(configFile || process.cwd())
  if (isDirectory(target)) return resolveConfig({}, '', target, overrides)
  if (!existsSync(target)) throw new ConfigError(`vt: config file not found: ${target}`)
  let mod: any
  try {
    mod = await import(pathToFileURL(target).href)
  } catch (e: any) {
    const err = new ConfigError(`vt: failed to load config file ${target}:\n${e?.stack ?? e}`)
    throw err
  }
  let user = mod?.default
  // A CommonJS-compiled config (package without "type": "module") arrives wrapped once more.
  if (
    user &&
    typeof user === 'object' &&
    'default' in user &&
    Object.keys(user).every(k => k === 'default' || k === '__esModule')
  )
    user = user.default
  if (user === undefined)
    throw new ConfigError(`vt: config file ${target} has no default export (export default defineConfig({ ... }))`)
  if (user === null || typeof user !== 'object' || Array.isArray(user))
    throw new ConfigError(
      `vt: the default export of ${target} must be an object (defineConfig({ ... })), got ${user === null ? 'null' : Array.isArray(user) ? 'an array' : typeof user}`,
    )
  if (options.validate !== false) await validateConfig(user, target)
  return resolveConfig(user as Config, target, path.dirname(target), overrides)
}

export interface LoadOptions {
  /**
   * false: the file was validated already (workers load the config the main process checked), so the schema
   * and zod are not loaded again in every worker.
   */
  validate?: boolean
}

/** Throws a ConfigError naming every bad key path, with the config file and the line of the key when found. */
export async function validateConfig(user: unknown, configFile: string, source?: string): Promise<void> {
  const schema = await import('./schema.ts')
  const parsed = schema.configSchema.safeParse(user)
  if (parsed.success) return
  const issues = schema.describeIssues(parsed.error.issues, user)
  throw configIssuesError(issues, configFile, source)
}

function readSource(configFile: string): string {
  try {
    return readFileSync(configFile, 'utf8')
  } catch {
    return ''
  }
}

function configIssuesError(
  issues: { path: KeyPath; message: string }[],
  configFile: string,
  source?: string,
): ConfigError {
  const text = source ?? (configFile ? readSource(configFile) : '')
  const withLines = issues
    .map(i => ({ ...i, line: text ? findKeyLine(text, i.path) : undefined }))
    .sort((a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER))
  const where = (line?: number) => (configFile ? `${configFile}${line ? `:${line}` : ''}: ` : '')
  const lines = withLines.map(i => `  ${where(i.line)}${formatKeyPath(i.path)}: ${i.message}`)
  const noun = issues.length === 1 ? 'error' : `${issues.length} errors`
  return new ConfigError(`vt: invalid config (${noun}):\n${lines.join('\n')}`, withLines)
}

function cores(): number {
  return availableParallelism()
}

/** `4` → 4, `'50%'` → half the cores; never below 1. */
export function resolveWorkers(workers: number | string | undefined): number {
  if (workers === undefined) return Math.max(1, Math.floor(cores() / 2))
  if (typeof workers === 'number') return Math.max(1, Math.floor(workers))
  const m = /^(\d+)(%?)$/.exec(workers.trim())
  if (!m) throw new ConfigError(`vt: workers must be a positive number or a percentage such as "50%", got "${workers}"`)
  const n = Number(m[1])
  if (m[2]) return Math.max(1, Math.floor((cores() * n) / 100))
  if (n < 1) throw new ConfigError(`vt: workers must be at least 1, got "${workers}"`)
  return n
}

let cachedVersion: string | undefined
function vtVersion(): string {
  if (cachedVersion) return cachedVersion
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  cachedVersion = String(pkg.version)
  return cachedVersion
}

function defaultReporter(): ReporterDescription[] {
  const ci = process.env.CI
  return ci && ci !== 'false' && ci !== '0' ? [['dot']] : [['list']]
}

function normalizeReporter(reporter: Config['reporter']): ReporterDescription[] {
  if (reporter === undefined) return defaultReporter()
  if (typeof reporter === 'string') return [[reporter]]
  return reporter.map(([name, options]) => (options === undefined ? [name] : [name, options]))
}

/** Turns a validated Config into a FullConfig: defaults, absolute paths, projects, CLI overrides. */
export function resolveConfig(
  user: Config,
  configFile: string,
  configDir: string,
  overrides: ConfigOverrides = {},
): FullConfig {
  const projectConfigs: ProjectConfig[] = user.projects && user.projects.length > 0 ? user.projects : [{}]
  const names = new Map<string, number>()
  const projects: FullProject[] = projectConfigs.map((p, i) => {
    const name = p.name ?? ''
    if (name) {
      const prev = names.get(name)
      if (prev !== undefined)
        throw configIssuesError(
          [{ path: ['projects', i, 'name'], message: `duplicate project name "${name}" (also projects[${prev}])` }],
          configFile,
        )
      names.set(name, i)
    }
    return resolveProject(user, p, i, configDir, overrides)
  })
  checkDependencies(projects, configFile)

  const resolvePath = (p: string | undefined) => (p ? path.resolve(configDir, p) : null)
  return {
    configFile,
    rootDir: configDir,
    projects,
    reporter: overrides.reporter ?? normalizeReporter(user.reporter),
    workers: overrides.workers !== undefined ? resolveWorkers(overrides.workers) : resolveWorkers(user.workers),
    globalTimeout: overrides.globalTimeout ?? user.globalTimeout ?? 0,
    maxFailures: overrides.maxFailures ?? user.maxFailures ?? 0,
    forbidOnly: overrides.forbidOnly ?? user.forbidOnly ?? false,
    failOnFlakyTests: overrides.failOnFlakyTests ?? user.failOnFlakyTests ?? false,
    reuseWorkerAfterFailure: user.reuseWorkerAfterFailure ?? false,
    globalSetup: resolvePath(user.globalSetup),
    globalTeardown: resolvePath(user.globalTeardown),
    expectTimeout: user.expect?.timeout ?? defaultExpectTimeout,
    fullyParallel: user.fullyParallel ?? false,
    quiet: user.quiet ?? false,
    shard: overrides.shard ?? user.shard ?? null,
    passWithNoTests: overrides.passWithNoTests ?? user.passWithNoTests ?? false,
    preserveOutput: user.preserveOutput ?? 'always',
    redact: user.redact ?? [],
    version: vtVersion(),
    metadata: { ...(user.metadata ?? {}) },
    replaySeed: overrides.seed ?? null,
    replayPath: overrides.seedPath ?? null,
    ...(overrides.debug ? { debug: overrides.debug } : {}),
  }
}

function resolveProject(
  top: Config,
  p: ProjectConfig,
  index: number,
  configDir: string,
  overrides: ConfigOverrides,
): FullProject {
  const testDir = path.resolve(configDir, p.testDir ?? top.testDir ?? '.')
  const outputDir = overrides.outputDir
    ? path.resolve(configDir, overrides.outputDir)
    : path.resolve(configDir, p.outputDir ?? top.outputDir ?? 'test-results')
  const name = p.name ?? ''
  return {
    id: name || `project-${index}`,
    name,
    use: { ...(top.use ?? {}), ...(p.use ?? {}), ...(overrides.trace ? { trace: overrides.trace } : {}) },
    testDir,
    testMatch: p.testMatch ?? top.testMatch ?? defaultTestMatch,
    testIgnore: p.testIgnore ?? top.testIgnore ?? [],
    outputDir,
    retries: overrides.retries ?? p.retries ?? top.retries ?? 0,
    repeatEach: overrides.repeatEach ?? p.repeatEach ?? top.repeatEach ?? 1,
    timeout: overrides.timeout ?? p.timeout ?? top.timeout ?? defaultTimeout,
    fullyParallel: p.fullyParallel ?? top.fullyParallel ?? false,
    dependencies: [...(p.dependencies ?? [])],
    grep: p.grep ?? top.grep ?? /.*/,
    grepInvert: p.grepInvert ?? top.grepInvert ?? null,
    cluster: p.cluster ?? top.cluster,
    metadata: { ...(top.metadata ?? {}), ...(p.metadata ?? {}) },
    seed: p.seed ?? top.seed,
  }
}

/** Every dependency names an existing project, and dependencies have no cycle. */
function checkDependencies(projects: FullProject[], configFile: string): void {
  const byName = new Map(projects.filter(p => p.name).map(p => [p.name, p]))
  projects.forEach((p, i) => {
    p.dependencies.forEach((dep, j) => {
      if (!byName.has(dep)) {
        const known = [...byName.keys()].map(n => `"${n}"`).join(', ') || '(no named projects)'
        throw configIssuesError(
          [{ path: ['projects', i, 'dependencies', j], message: `unknown project "${dep}"; projects: ${known}` }],
          configFile,
        )
      }
      if (dep === p.name)
        throw configIssuesError(
          [{ path: ['projects', i, 'dependencies', j], message: `project "${dep}" cannot depend on itself` }],
          configFile,
        )
    })
  })
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (name: string, trail: string[]) => {
    if (state.get(name) === 'done') return
    if (state.get(name) === 'visiting') {
      const cycle = [...trail.slice(trail.indexOf(name)), name].join(' → ')
      const i = projects.findIndex(p => p.name === name)
      throw configIssuesError(
        [{ path: ['projects', i, 'dependencies'], message: `dependency cycle: ${cycle}` }],
        configFile,
      )
    }
    state.set(name, 'visiting')
    for (const dep of byName.get(name)?.dependencies ?? []) visit(dep, [...trail, name])
    state.set(name, 'done')
  }
  for (const name of byName.keys()) visit(name, [])
}
