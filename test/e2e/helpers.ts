// Runs the real `bin/vt.js test` on a small spec project written into a temp dir and returns what a user would
// see: exit code, stdout/stderr, the JSON report and the parsed JUnit XML. The package resolves in the temp
// project through node_modules/vmtest-cluster, a symlink to this repository (as after installing it), and through
// node_modules/vt, the short name the specs written here use.
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { JsonReport, JsonResult, JsonSpec, JsonSuite, JsonTest } from '../../reporters/json.ts'
import { parseXml, validateJUnitSchema, type XmlElement } from '../reporters/xml.ts'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const vtBin = path.join(repoRoot, 'bin/vt.js')
/** The package's npm name: what users import. */
export const packageName: string = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).name

export interface Project {
  dir: string
  write(files: Record<string, string>): void
  read(file: string): string
  exists(file: string): boolean
  /** Lines of a log file the specs append to (see `logFixture`), empty when absent. */
  log(file?: string): string[]
}

/** A temp project with the given files (a default vt.config.ts unless one is given); removed after the test. */
export function project(t: TestContext, files: Record<string, string>): Project {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vt-e2e-')))
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(repoRoot, path.join(dir, 'node_modules', 'vt'), 'dir')
  fs.symlinkSync(repoRoot, path.join(dir, 'node_modules', packageName), 'dir')
  const p: Project = {
    dir,
    write(more) {
      for (const [name, text] of Object.entries(more)) {
        const file = path.join(dir, name)
        fs.mkdirSync(path.dirname(file), { recursive: true })
        fs.writeFileSync(file, text)
      }
    },
    read: file => fs.readFileSync(path.join(dir, file), 'utf8'),
    exists: file => fs.existsSync(path.join(dir, file)),
    log(file = 'log.txt') {
      const full = path.join(dir, file)
      return fs.existsSync(full) ? fs.readFileSync(full, 'utf8').split('\n').filter(Boolean) : []
    },
  }
  p.write({
    'package.json': '{ "name": "e2e-project", "private": true, "type": "module" }\n',
    'vt.config.ts': "import { defineConfig } from 'vt'\nexport default defineConfig({})\n",
    ...files,
  })
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return p
}

/** A spec line that appends to log.txt in the project: `log('setup w')`. Prepend to spec files. */
export const logHelper = `
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
const log = (line: string) => appendFileSync(join(process.cwd(), 'log.txt'), line + '\\n')
`

/** Spec code: `bothWorkers(parallelIndex)` resolves once tests run on parallel indexes 0 and 1 at the same time. */
export const bothWorkers = `
// Each test waits until tests run on both parallel indexes at once: proves parallelism without timing guesses.
import { existsSync, writeFileSync } from 'node:fs'
const bothWorkers = async (index: number) => {
  writeFileSync('seen-' + index, '')
  const deadline = Date.now() + 20_000
  while (!(existsSync('seen-0') && existsSync('seen-1'))) {
    if (Date.now() > deadline) throw new Error('no test ran on the other worker at the same time')
    await new Promise(r => setTimeout(r, 20))
  }
}
`

export interface RunResult {
  exitCode: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** stdout + stderr, for error-message assertions. */
  output: string
  /** The JSON report, when the run got far enough to write one. */
  json?: JsonReport
  junitXml?: string
  junit?: XmlElement
  durationMs: number
}

export interface RunOptions {
  env?: Record<string, string | undefined>
  /** Kill the whole process group after this long (a hung runner fails the test instead of hanging it). */
  timeoutMs?: number
  /** Extra reporters besides json and junit (default: list, so failures print readably). */
  reporters?: string[]
  /** Leave out the --reporter flag entirely (to test the config's reporters or the default). */
  noReporterFlag?: boolean
  /** Called with the running vt process, e.g. to send it SIGINT. */
  during?: (child: ChildProcess, project: Project) => Promise<void>
}

/** Runs `vt test ...args` in the project. */
export async function runVt(p: Project, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const jsonFile = path.join(p.dir, 'report', 'report.json')
  const junitFile = path.join(p.dir, 'report', 'junit.xml')
  fs.rmSync(path.join(p.dir, 'report'), { recursive: true, force: true })
  const reporterArgs = options.noReporterFlag
    ? []
    : ['--reporter', [...(options.reporters ?? ['list']), 'json', 'junit'].join(',')]
  const env: Record<string, string | undefined> = {
    ...process.env,
    VT_JSON_OUTPUT_FILE: jsonFile,
    VT_JUNIT_OUTPUT_FILE: junitFile,
    FORCE_COLOR: '0',
    NO_COLOR: '1',
    ...options.env,
  }
  // Set by `node --test` for its own children: vt is not a node:test process.
  delete env.NODE_TEST_CONTEXT
  const started = Date.now()
  const child = spawn(process.execPath, [vtBin, 'test', ...args, ...reporterArgs], {
    cwd: p.dir,
    env: env as NodeJS.ProcessEnv,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', d => (stdout += d))
  child.stderr!.setEncoding('utf8').on('data', d => (stderr += d))
  const exited = new Promise<[number | null, NodeJS.Signals | null]>(resolve =>
    child.on('close', (code, signal) => resolve([code, signal])),
  )
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {}
  }, options.timeoutMs ?? 60_000)
  if (options.during) await options.during(child, p)
  const [exitCode, signal] = await exited
  clearTimeout(timer)
  // Anything left in the group (a worker that outlived vt) is a leak: report it, then kill it.
  const leaked = groupAlive(child.pid!)
  if (leaked) {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {}
  }
  const result: RunResult = {
    exitCode,
    signal,
    stdout,
    stderr,
    output: stdout + stderr,
    durationMs: Date.now() - started,
  }
  if (timedOut)
    throw new Error(`vt ${args.join(' ')} did not finish in ${options.timeoutMs ?? 60_000}ms\n${result.output}`)
  if (leaked) throw new Error(`vt ${args.join(' ')} left processes behind after exiting\n${result.output}`)
  if (fs.existsSync(jsonFile)) result.json = JSON.parse(fs.readFileSync(jsonFile, 'utf8'))
  if (fs.existsSync(junitFile)) {
    result.junitXml = fs.readFileSync(junitFile, 'utf8')
    result.junit = parseXml(result.junitXml)
    validateJUnitSchema(result.junitXml)
  }
  return result
}

/** Whether any process of the process group `pgid` still runs (zombies excluded). */
function groupAlive(pgid: number): boolean {
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true
    } catch {}
  }
  return false
}

/** Waits until a file exists in the project (specs write marker files to say where they are). */
export async function waitForFile(p: Project, file: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!p.exists(file)) {
    if (Date.now() > deadline) throw new Error(`${file} did not appear in ${timeoutMs}ms`)
    await sleep(50)
  }
}

export interface FlatTest extends JsonTest {
  title: string
  /** Titles below the file, joined with ' › '. */
  path: string
  file: string
  line: number
}

/** Every test of the JSON report, flattened, with its title path within the file. */
export function allTests(report: JsonReport | undefined): FlatTest[] {
  if (!report) throw new Error('no JSON report was written')
  const out: FlatTest[] = []
  const visit = (suite: JsonSuite, titles: string[]) => {
    for (const spec of suite.specs as JsonSpec[]) {
      for (const test of spec.tests)
        out.push({
          ...test,
          title: spec.title,
          path: [...titles, spec.title].join(' › '),
          file: spec.file,
          line: spec.line,
        })
    }
    for (const child of suite.suites ?? []) visit(child, [...titles, child.title])
  }
  for (const file of report.suites) visit(file, [])
  return out
}

/** The single test whose title path (within its file) is `titlePath`. */
export function testByPath(report: JsonReport | undefined, titlePath: string): FlatTest {
  const matches = allTests(report).filter(t => t.path === titlePath || t.title === titlePath)
  if (matches.length !== 1)
    throw new Error(
      `expected one test "${titlePath}", found ${matches.length}; tests: ${allTests(report)
        .map(t => t.path)
        .join(', ')}`,
    )
  return matches[0]
}

/** Status of each attempt: `['failed', 'passed']`. */
export function statuses(test: FlatTest): JsonResult['status'][] {
  return test.results.map(r => r.status)
}
