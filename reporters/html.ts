// `html`: a self-contained report folder (index.html + data/) that opens from file:// or `vt show-report`.
// The run is serialized by the json reporter, flattened to one entry per test and project, attachments copied
// under data/ (text ones also inlined), and embedded as JSON in index.html next to a small vanilla viewer
// (reporters/html/viewer.js and viewer.css, inlined at write time: no fetches, no framework).
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FullConfig } from '../src/config/types.ts'
import type { Suite } from '../src/runner/model.ts'
import type { FullResult, Reporter, TestError } from '../src/runner/reporterApi.ts'
import { type Output, stripAnsi } from './base.ts'
import { addRun, checkHistoryOption, type HistoryRun, readHistory, runSummary, writeHistory } from './htmlHistory.ts'
import JsonReporter, {
  type JsonAttachment,
  type JsonError,
  type JsonOutput,
  type JsonReport,
  type JsonResult,
  type JsonSuite,
} from './json.ts'

export type OpenMode = 'always' | 'never' | 'on-failure'

export interface HtmlReporterOptions {
  /** The report folder, relative to the config's folder (default `vt-report`; VT_HTML_OUTPUT_DIR overrides). */
  outputFolder?: string
  /** When to print how to open the report (default: never under CI, on-failure locally). */
  open?: OpenMode
  configDir?: string
  rootDir?: string
  outputDir?: string
  /** How many runs history.json keeps (this one included) for the trends; 0 keeps none (default 20). */
  history?: number
  /** Where the "To open the report" hint goes (default process.stdout). */
  stream?: Output
}

export interface HtmlAttachment {
  name: string
  contentType: string
  /** Relative to the report folder (`data/<hash>.<ext>`), when the content could be stored. */
  path?: string
  /** The content of a small text attachment, shown inline. */
  text?: string
  /** Why the attachment has no content in the report (e.g. the file was gone). */
  missing?: string
  size?: number
}

export interface HtmlResult extends Omit<JsonResult, 'stdout' | 'stderr' | 'attachments'> {
  stdout: string
  stderr: string
  attachments: HtmlAttachment[]
}

export interface HtmlTest {
  testId: string
  file: string
  line: number
  column: number
  /** Titles below the file: describes, then the test. */
  titles: string[]
  projectName: string
  status: 'expected' | 'unexpected' | 'flaky' | 'skipped'
  expectedStatus: string
  annotations: { type: string; description?: string }[]
  duration: number
  results: HtmlResult[]
}

export interface HtmlReport {
  title: string
  stats: JsonReport['stats']
  errors: JsonError[]
  projects: string[]
  tests: HtmlTest[]
  /** The last runs, oldest first, this one last (empty when the history option is 0). */
  history: HistoryRun[]
}

const MAX_INLINE_TEXT = 256 * 1024
const viewerDir = fileURLToPath(new URL('./html/', import.meta.url))

function userError(message: string): Error {
  return Object.assign(new Error(message), { vtUserError: true })
}

function isCI(env = process.env): boolean {
  const ci = env.CI
  return !!ci && ci !== 'false' && ci !== '0'
}

export function resolveOutputFolder(options: { outputFolder?: unknown; configDir?: string }): string {
  if (options.outputFolder !== undefined) {
    if (typeof options.outputFolder !== 'string' || !options.outputFolder)
      throw userError(
        `html reporter: option outputFolder must be a non-empty string, got ${JSON.stringify(options.outputFolder)}`,
      )
    return path.resolve(options.configDir ?? process.cwd(), options.outputFolder)
  }
  const fromEnv = process.env.VT_HTML_OUTPUT_DIR
  if (fromEnv) return path.resolve(process.cwd(), fromEnv)
  return path.resolve(options.configDir ?? process.cwd(), 'vt-report')
}

/** JSON for an inline <script>: no `<` survives, so neither `</script>` nor `<!--` can end or bend the element. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')
}

const extensions: Record<string, string> = {
  'text/plain': '.txt',
  'text/html': '.html',
  'text/csv': '.csv',
  'text/markdown': '.md',
  'application/json': '.json',
  'application/xml': '.xml',
  'text/xml': '.xml',
  'image/png': '.png',
  'image/jpeg': '.jpg',
  'image/gif': '.gif',
  'image/webp': '.webp',
  'image/svg+xml': '.svg',
  'application/pdf': '.pdf',
}

function isText(contentType: string): boolean {
  return /^text\/|[/+](json|xml)\b|javascript|x-sh\b|yaml/.test(contentType)
}

/**
 * Removes the data/ of an earlier report in `dir`. A data/ folder that an html report did not write (no index.html
 * of ours next to it) is someone else's: refuse rather than delete it.
 */
function clearPreviousData(dir: string): void {
  const dataDir = path.join(dir, 'data')
  if (!fs.existsSync(dataDir)) return
  let ours = false
  try {
    const fd = fs.openSync(path.join(dir, 'index.html'), 'r')
    const head = Buffer.alloc(256 * 1024)
    const n = fs.readSync(fd, head, 0, head.length, 0)
    fs.closeSync(fd)
    ours = head.subarray(0, n).includes('id="vt-report-data"')
  } catch {}
  if (!ours && fs.readdirSync(dataDir).length > 0)
    throw new Error(`${dataDir} exists and was not written by the html reporter; choose another outputFolder`)
  fs.rmSync(dataDir, { recursive: true, force: true })
}

function chunkText(chunk: JsonOutput): string {
  return 'text' in chunk ? chunk.text : Buffer.from(chunk.buffer, 'base64').toString('utf8')
}

export default class HtmlReporter implements Reporter {
  readonly outputFolder: string
  readonly open: OpenMode
  readonly historyRuns: number
  private readonly json: JsonReporter
  private readonly stream: Output
  private suite!: Suite
  private written = false
  private failed = false

  constructor(options: HtmlReporterOptions = {}) {
    this.outputFolder = resolveOutputFolder(options)
    for (const home of [options.configDir, options.rootDir]) {
      const rel = home ? path.relative(this.outputFolder, path.resolve(home)) : '..'
      if (!rel.startsWith('..') && !path.isAbsolute(rel))
        throw userError(
          `html reporter: the report folder ${this.outputFolder} holds the project (${home}); its data/ would be replaced on every run. Set outputFolder to a folder of its own, such as 'vt-report'`,
        )
    }
    const open = options.open ?? (isCI() ? 'never' : 'on-failure')
    if (!['always', 'never', 'on-failure'].includes(open))
      throw userError(
        `html reporter: option open must be 'always', 'never' or 'on-failure', got ${JSON.stringify(options.open)}`,
      )
    this.open = open
    this.historyRuns = checkHistoryOption(options.history)
    this.stream = options.stream ?? process.stdout
    this.json = new JsonReporter({ rootDir: options.rootDir, configDir: options.configDir, stream: { write() {} } })
  }

  printsToStdio(): boolean {
    return false
  }

  onBegin(config: FullConfig, suite: Suite): void {
    this.suite = suite
    this.json.onBegin(config, suite)
  }

  onError(error: TestError): void {
    this.json.onError(error)
  }

  onEnd(result: FullResult): void {
    this.failed = result.status !== 'passed'
    try {
      this.write(this.json.report(result))
      this.written = true
    } catch (e: any) {
      // A report that cannot be written must not fail or crash the run.
      process.stderr.write(`vt: html reporter could not write the report to ${this.outputFolder}: ${e?.message ?? e}\n`)
    }
  }

  onExit(): void {
    if (!this.written) return
    if (this.open === 'always' || (this.open === 'on-failure' && this.failed)) {
      const rel = path.relative(process.cwd(), this.outputFolder)
      const shown = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : this.outputFolder
      const arg = /^[\w./@:+-]+$/.test(shown) ? shown : `'${shown.replace(/'/g, `'\\''`)}'`
      this.stream.write(`\nTo open the report: npx vt show-report ${arg}\n\n`)
    }
  }

  /** Writes index.html and data/ into the folder; replaces only what an earlier html report wrote there. */
  write(json: JsonReport): HtmlReport {
    const dir = this.outputFolder
    const dataDir = path.join(dir, 'data')
    fs.mkdirSync(dir, { recursive: true })
    clearPreviousData(dir)
    fs.mkdirSync(dataDir, { recursive: true })
    const report = this.htmlReport(json, dataDir)
    if (this.historyRuns > 0) {
      const warn = (m: string) => process.stderr.write(`vt: html reporter: ${m}\n`)
      report.history = addRun(readHistory(dir, warn), runSummary(json.stats, report.tests), this.historyRuns)
      writeHistory(dir, report.history)
    }
    const css = ['viewer.css', 'charts.css'].map(f => fs.readFileSync(path.join(viewerDir, f), 'utf8')).join('')
    // charts.js and history.js define what viewer.js uses (window.vtCharts, window.vtHistory).
    const js = ['charts.js', 'history.js', 'viewer.js']
      .map(f => fs.readFileSync(path.join(viewerDir, f), 'utf8'))
      .join('')
    const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; media-src 'self'">
<title>vt report</title>
<style>
${css}</style>
</head>
<body>
<div id="app"><noscript>This report needs JavaScript.</noscript></div>
<script type="application/json" id="vt-report-data">${jsonForScript(report)}</script>
<script>
${js}</script>
</body>
</html>
`
    const file = path.join(dir, 'index.html')
    const tmp = `${file}.${process.pid}.tmp`
    fs.writeFileSync(tmp, html)
    fs.renameSync(tmp, file)
    return report
  }

  private htmlReport(json: JsonReport, dataDir: string): HtmlReport {
    const tests: HtmlTest[] = []
    const visit = (suite: JsonSuite, titles: string[]) => {
      for (const spec of suite.specs) {
        for (const t of spec.tests) {
          const results = t.results.map(r => this.result(r, dataDir))
          tests.push({
            testId: t.testId,
            file: spec.file,
            line: spec.line,
            column: spec.column,
            titles: [...titles, spec.title],
            projectName: t.projectName,
            status: t.status,
            expectedStatus: t.expectedStatus,
            annotations: t.annotations,
            duration: results.reduce((sum, r) => sum + r.duration, 0),
            results,
          })
        }
      }
      for (const child of suite.suites ?? []) visit(child, child.title ? [...titles, child.title] : titles)
    }
    for (const file of json.suites) visit(file, [])
    // In each file, tests in source order (the json report lists a suite's own tests before its describes).
    const fileOrder = new Map(json.suites.map((f, i) => [f.file, i]))
    tests.sort(
      (a, b) => (fileOrder.get(a.file) ?? 0) - (fileOrder.get(b.file) ?? 0) || a.line - b.line || a.column - b.column,
    )
    const projects = [...new Set(tests.map(t => t.projectName))]
    return { title: 'vt report', stats: json.stats, errors: json.errors, projects, tests, history: [] }
  }

  private result(r: JsonResult, dataDir: string): HtmlResult {
    const { stdout, stderr, attachments, ...rest } = r
    return {
      ...rest,
      stdout: stripAnsi(stdout.map(chunkText).join('')),
      stderr: stripAnsi(stderr.map(chunkText).join('')),
      attachments: attachments.map(a => this.attachment(a, dataDir)),
    }
  }

  /** Copies the attachment's content into data/, named by its hash so equal contents are stored once. */
  private attachment(a: JsonAttachment, dataDir: string): HtmlAttachment {
    const out: HtmlAttachment = { name: a.name, contentType: a.contentType }
    let content: Buffer | undefined
    let ext = extensions[a.contentType.split(';')[0].trim()] ?? ''
    try {
      if (a.body !== undefined) content = Buffer.from(a.body, 'base64')
      else if (a.path) {
        if (!ext)
          ext = path
            .extname(a.path)
            .slice(0, 16)
            .replace(/[^\w.]/g, '')
        const stat = fs.statSync(a.path)
        if (!stat.isFile()) throw new Error('not a file')
        out.size = stat.size
        // Hash big files by identity rather than content: a disk image need not be read twice.
        const id =
          stat.size > 64 * 1024 * 1024
            ? createHash('sha1').update(`${a.path}\0${stat.size}\0${stat.mtimeMs}`).digest('hex')
            : createHash('sha1').update(fs.readFileSync(a.path)).digest('hex')
        const name = `${id}${ext}`
        fs.copyFileSync(a.path, path.join(dataDir, name))
        out.path = `data/${name}`
        if (isText(a.contentType) && stat.size <= MAX_INLINE_TEXT) out.text = stripAnsi(fs.readFileSync(a.path, 'utf8'))
        return out
      }
    } catch (e: any) {
      out.missing = `${a.path}: ${e?.code === 'ENOENT' ? 'file not found' : (e?.message ?? e)}`
      return out
    }
    if (!content) return out
    const name = `${createHash('sha1').update(content).digest('hex')}${ext}`
    fs.writeFileSync(path.join(dataDir, name), content)
    out.path = `data/${name}`
    out.size = content.length
    if (isText(a.contentType) && content.length <= MAX_INLINE_TEXT) out.text = stripAnsi(content.toString('utf8'))
    return out
  }
}
