// Runs the real bin/vt.js on a temporary spec project and cleans up after it.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const vtBin = path.join(repoRoot, 'bin', 'vt.js')
/** What a spec in a temp project imports: the repo's public entry point. */
export const vtImport = path.join(repoRoot, 'src', 'index.ts')

export interface VtResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

const created: string[] = []

/** A temp project (ESM) with the given files; removed by cleanupProjects(). */
export function makeProject(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-main-'))
  created.push(dir)
  writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n')
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(dir, name)
    mkdirSync(path.dirname(file), { recursive: true })
    writeFileSync(file, text.replaceAll('VT_IMPORT', JSON.stringify(vtImport)))
  }
  return dir
}

export function cleanupProjects(): void {
  for (const d of created.splice(0)) rmSync(d, { recursive: true, force: true })
}

export function runVt(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; onSpawn?: (pid: number) => void } = {},
): Promise<VtResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...opts.env }
    delete env.FORCE_COLOR
    delete env.CI
    const child = spawn(process.execPath, [vtBin, ...args], { cwd: opts.cwd ?? repoRoot, env, stdio: 'pipe' })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => (stdout += d))
    child.stderr.on('data', d => (stderr += d))
    child.on('error', reject)
    if (child.pid) opts.onSpawn?.(child.pid)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

/**
 * A custom reporter (loaded by module path, like a user's) that writes every event as a JSON line to events.jsonl
 * in the project dir: the tests below read exactly what reporters receive.
 */
export const eventsReporter = `
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
export default class Events {
  constructor(options) { this.file = join(options.configDir, 'events.jsonl'); this.options = options }
  printsToStdio() { return false }
  write(e) { appendFileSync(this.file, JSON.stringify(e) + '\\n') }
  onBegin(config, suite) { this.write({ type: 'begin', workers: config.workers, tests: suite.allTests().map(t => t.id), options: Object.keys(this.options).sort() }) }
  onTestBegin(test, result) { this.write({ type: 'testBegin', id: test.id, title: test.title, retry: result.retry, workerIndex: result.workerIndex, parallelIndex: result.parallelIndex }) }
  onStepBegin(test, result, step) { this.write({ type: 'stepBegin', id: test.id, title: step.title, category: step.category, path: step.titlePath() }) }
  onStepEnd(test, result, step) { this.write({ type: 'stepEnd', id: test.id, title: step.title, error: step.error?.message }) }
  onStdOut(chunk, test) { this.write({ type: 'stdout', id: test?.id, text: String(chunk) }) }
  onTestEnd(test, result) { this.write({ type: 'testEnd', id: test.id, title: test.title, project: test.parent.project()?.name, repeatEachIndex: test.repeatEachIndex, status: result.status, outcome: test.outcome(), retry: result.retry, workerIndex: result.workerIndex, start: result.startTime.getTime(), duration: result.duration, errors: result.errors.map(e => e.message), annotations: result.annotations }) }
  onError(error) { this.write({ type: 'error', message: error.message }) }
  onEnd(result) { this.write({ type: 'end', status: result.status }) }
}
`

export interface Event {
  type: string
  [key: string]: any
}

export function readEvents(dir: string): Event[] {
  const file = path.join(dir, 'events.jsonl')
  let text = ''
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return []
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map(l => JSON.parse(l))
}
