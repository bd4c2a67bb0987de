// `junit`: JUnit XML as Jenkins and GitLab read it. One <testsuite> per file and project, one <testcase> per
// test (name = title path within the file, classname = file), <failure> with the message and the formatted
// error, <skipped/>, <system-out>/<system-err>, <properties> for annotations and attachments. Attachments are
// referenced as files with `[[ATTACHMENT|path]]` in system-out (the convention both CI servers understand);
// attachments that only have a body are first written to files next to the report.
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pc from 'picocolors'
import type { FullConfig } from '../src/config/types.ts'
import type { Suite, TestCase } from '../src/runner/model.ts'
import type { Attachment, FullResult, Reporter, TestError, TestResult } from '../src/runner/reporterApi.ts'
import {
  errorHeader,
  formatError,
  formatResultFailure,
  type Output,
  projectName,
  relativePath,
  stripAnsi,
  titlePathInFile,
} from './base.ts'
import { resolveOutputFile, writeReport } from './output.ts'

// Characters XML 1.0 does not allow at all (control characters other than tab, LF, CR; lone surrogates; FFFE/F).
const invalidXmlChars = /[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu

/** Text safe inside an XML element or attribute: ANSI and invalid characters removed, markup escaped. */
export function xmlEscape(text: string, attribute = false): string {
  const clean = stripAnsi(text).replace(invalidXmlChars, '')
  let out = clean.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  if (attribute) {
    out = out
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
      .replace(/\n/g, '&#10;')
      .replace(/\r/g, '&#13;')
      .replace(/\t/g, '&#9;')
  }
  return out
}

interface XmlNode {
  name: string
  attributes?: Record<string, string | number | undefined>
  children?: XmlNode[]
  text?: string
}

function renderXml(node: XmlNode, indent: string, out: string[]): void {
  const attrs = Object.entries(node.attributes ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${xmlEscape(String(v), true)}"`)
    .join('')
  if (!node.children?.length && node.text === undefined) {
    out.push(`${indent}<${node.name}${attrs}/>`)
  } else if (node.text !== undefined) {
    out.push(`${indent}<${node.name}${attrs}>${xmlEscape(node.text)}</${node.name}>`)
  } else {
    out.push(`${indent}<${node.name}${attrs}>`)
    for (const child of node.children ?? []) renderXml(child, indent + '  ', out)
    out.push(`${indent}</${node.name}>`)
  }
}

export interface JUnitReporterOptions {
  outputFile?: string
  configDir?: string
  rootDir?: string
  outputDir?: string
  stream?: Output
}

const noColors = pc.createColors(false)

export default class JUnitReporter implements Reporter {
  private config!: FullConfig
  private suite!: Suite
  private readonly errors: TestError[] = []
  private readonly outputFile: string | undefined
  private readonly stream: Output
  private readonly configDir: string
  private readonly outputDir: string
  private rootDir: string
  private startTime = new Date()

  constructor(options: JUnitReporterOptions = {}) {
    this.outputFile = resolveOutputFile(options, 'VT_JUNIT_OUTPUT_FILE')
    this.stream = options.stream ?? process.stdout
    this.configDir = options.configDir ?? process.cwd()
    this.rootDir = options.rootDir ?? this.configDir
    this.outputDir = options.outputDir ?? path.join(this.configDir, 'test-results')
  }

  printsToStdio(): boolean {
    return !this.outputFile
  }

  onBegin(config: FullConfig, suite: Suite): void {
    this.config = config
    this.suite = suite
    if (config.rootDir) this.rootDir = config.rootDir
    this.startTime = new Date()
  }

  onError(error: TestError): void {
    this.errors.push(error)
  }

  onEnd(result: FullResult): void {
    writeReport(this.outputFile, this.render(result), this.stream)
  }

  render(result: FullResult): string {
    const suites: XmlNode[] = []
    const visit = (s: Suite) => {
      if (s.type === 'file') suites.push(this.fileSuite(s))
      else s.suites.forEach(visit)
    }
    visit(this.suite)
    suites.push(...this.errorSuites())
    const sum = (key: string) => suites.reduce((n, s) => n + Number(s.attributes![key]), 0)
    const root: XmlNode = {
      name: 'testsuites',
      attributes: {
        name: 'vt',
        tests: sum('tests'),
        failures: sum('failures'),
        skipped: sum('skipped'),
        errors: sum('errors'),
        time: seconds(result.duration),
      },
      children: suites,
    }
    const out = ['<?xml version="1.0" encoding="UTF-8"?>']
    renderXml(root, '', out)
    return out.join('\n') + '\n'
  }

  private fileSuite(fileSuite: Suite): XmlNode {
    const file = relativePath(this.rootDir, fileSuite._file ?? fileSuite.title)
    const project = fileSuite.project()?.name ?? ''
    const cases: XmlNode[] = []
    let failures = 0
    let skipped = 0
    let time = 0
    let start: number | undefined
    for (const test of fileSuite.allTests()) {
      const outcome = test.outcome()
      const duration = test.results.reduce((sum, r) => sum + r.duration, 0)
      time += duration
      for (const r of test.results) {
        const t = new Date(r.startTime).getTime()
        if (Number.isFinite(t) && (start === undefined || t < start)) start = t
      }
      const children: XmlNode[] = []
      const properties = this.properties(test)
      if (properties.length) children.push({ name: 'properties', children: properties })
      const last = test.results[test.results.length - 1]
      if (test.results.length === 0 || outcome === 'skipped') {
        skipped++
        const reason = test.annotations.find(a => a.type === 'skip' || a.type === 'fixme')?.description
        children.push({
          name: 'skipped',
          attributes: { message: test.results.length === 0 ? 'did not run' : (reason ?? 'skipped') },
        })
      } else if (outcome === 'unexpected') {
        failures++
        const error = last.errors[0] ?? last.error
        const message = error ? firstLine(errorHeader(error, noColors)) : describeStatus(test, last)
        children.push({
          name: 'failure',
          attributes: {
            message: `${relativePath(this.rootDir, test.location.file)}:${test.location.line}:${test.location.column} ${message}`,
            type: errorType(error, last),
          },
          text: this.failureText(test),
        })
      }
      const stdout: string[] = []
      const stderr: string[] = []
      for (const r of test.results) {
        stdout.push(...r.stdout.map(chunkText))
        stderr.push(...r.stderr.map(chunkText))
      }
      if (outcome === 'flaky') stdout.push(`\nflaky: passed on retry #${last.retry}\n${this.failureText(test)}\n`)
      for (const a of test.results.flatMap(r => r.attachments)) {
        const file = this.attachmentFile(a)
        if (file) stdout.push(`\n[[ATTACHMENT|${file}]]\n`)
      }
      if (stdout.length) children.push({ name: 'system-out', text: stdout.join('') })
      if (stderr.length) children.push({ name: 'system-err', text: stderr.join('') })
      cases.push({
        name: 'testcase',
        attributes: {
          name: titlePathInFile(test).join(' › '),
          classname: file,
          time: seconds(duration),
        },
        children,
      })
    }
    if (fileSuite._loadError) cases.push(this.errorCase('load error', fileSuite._loadError))
    return {
      name: 'testsuite',
      attributes: {
        name: file,
        hostname: project || os.hostname(),
        tests: cases.length,
        failures,
        skipped,
        errors: fileSuite._loadError ? 1 : 0,
        time: seconds(time),
        timestamp: isoSeconds(start ?? this.startTime.getTime()),
      },
      children: cases,
    }
  }

  private properties(test: TestCase): XmlNode[] {
    const props: XmlNode[] = []
    const annotations = [...test.annotations, ...test.results.flatMap(r => r.annotations)]
    const seen = new Set<string>()
    for (const a of annotations) {
      const key = `${a.type}\u0000${a.description ?? ''}`
      if (seen.has(key)) continue
      seen.add(key)
      props.push({ name: 'property', attributes: { name: a.type, value: a.description ?? '' } })
    }
    const project = projectName(test)
    if (project) props.push({ name: 'property', attributes: { name: 'project', value: project } })
    for (const a of test.results.flatMap(r => r.attachments)) {
      const file = this.attachmentFile(a)
      if (file) props.push({ name: 'property', attributes: { name: `attachment:${a.name}`, value: file } })
    }
    return props
  }

  private readonly attachmentFiles = new Map<Attachment, string | undefined>()

  /** The attachment's file relative to the config folder; body-only attachments are written out first. */
  private attachmentFile(a: Attachment): string | undefined {
    if (this.attachmentFiles.has(a)) return this.attachmentFiles.get(a)
    let file = a.path
    if (!file && a.body) {
      const dir = this.outputFile
        ? path.join(
            path.dirname(this.outputFile),
            `${path.basename(this.outputFile, path.extname(this.outputFile))}-attachments`,
          )
        : path.join(this.outputDir, 'junit-attachments')
      const body = Buffer.from(a.body)
      const name = `${sanitize(a.name)}-${createHash('sha1').update(body).digest('hex').slice(0, 12)}${extension(a)}`
      file = path.join(dir, name)
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(file, body)
    }
    const rel = file ? path.relative(this.configDir, file).split(path.sep).join('/') : undefined
    this.attachmentFiles.set(a, rel)
    return rel
  }

  private failureText(test: TestCase): string {
    const parts: string[] = []
    for (const r of test.results) {
      if (r.status === 'skipped' || r.status === test.expectedStatus) continue
      if (test.results.length > 1) parts.push(`attempt #${r.retry + 1}: ${r.status}`)
      // Output and attachments have their own elements: keep the failure to the errors.
      parts.push(
        ...formatResultFailure(test, { ...r, stdout: [], stderr: [], attachments: [] }, this.rootDir, noColors, 100),
      )
    }
    return stripAnsi(parts.join('\n'))
  }

  private errorCase(name: string, error: TestError): XmlNode {
    return {
      name: 'testcase',
      attributes: { name, classname: error.location ? relativePath(this.rootDir, error.location.file) : 'vt', time: 0 },
      children: [
        {
          name: 'error',
          attributes: { message: firstLine(errorHeader(error, noColors)), type: errorType(error) },
          text: formatError(error, this.rootDir, noColors),
        },
      ],
    }
  }

  /** Errors outside tests (load errors, globalSetup, worker teardown) as a suite of <error> test cases. */
  private errorSuites(): XmlNode[] {
    const loadErrorFiles = new Set<string>()
    const visit = (s: Suite) => {
      if (s.type === 'file' && s._loadError) loadErrorFiles.add(s._loadError.message)
      else s.suites.forEach(visit)
    }
    visit(this.suite)
    const errors = this.errors.filter(e => !loadErrorFiles.has(e.message))
    if (!errors.length) return []
    return [
      {
        name: 'testsuite',
        attributes: {
          name: 'vt errors',
          hostname: os.hostname(),
          tests: errors.length,
          failures: 0,
          skipped: 0,
          errors: errors.length,
          time: 0,
          timestamp: isoSeconds(this.startTime.getTime()),
        },
        children: errors.map((e, i) => this.errorCase(`error ${i + 1}`, e)),
      },
    ]
  }
}

function chunkText(chunk: string | Buffer): string {
  return typeof chunk === 'string' ? chunk : chunk.toString('utf8')
}

function seconds(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3)
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, '')
}

function firstLine(message: string): string {
  const line =
    stripAnsi(message)
      .split('\n')
      .find(l => l.trim()) ?? ''
  return line.length > 300 ? line.slice(0, 299) + '…' : line
}

function errorType(error: TestError | undefined, result?: TestResult): string {
  if (result?.status === 'timedOut') return 'TimeoutError'
  const match = error && /^((?:[A-Z][A-Za-z]*)?(?:Error|Exception))\b/.exec(stripAnsi(error.stack ?? error.message))
  if (match) return match[1]
  return result?.status === 'interrupted' ? 'Interrupted' : 'FAILURE'
}

function describeStatus(test: TestCase, result: TestResult): string {
  if (result.status === 'passed' && test.expectedStatus === 'failed') return 'expected to fail, but passed'
  return result.status
}

function sanitize(name: string): string {
  return name.replace(/[^\w.-]+/g, '-').slice(0, 60) || 'attachment'
}

function extension(a: Attachment): string {
  if (path.extname(a.name)) return ''
  const known: Record<string, string> = {
    'text/plain': '.txt',
    'application/json': '.json',
    'text/html': '.html',
    'image/png': '.png',
    'image/jpeg': '.jpg',
    'application/xml': '.xml',
  }
  return known[a.contentType.split(';')[0].trim()] ?? '.bin'
}
