// Reporter loading and the multiplexer that fans every event out to all of them. Built-in reporters live in
// reporters/<name>.ts; a custom one is a module path (relative to the config dir) or a package name; either way
// the default export is a class constructed with `{ ...options, rootDir, outputDir, configDir }`.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { FullConfig, ReporterDescription } from '../../config/types.ts'
import { redactDeep } from '../../util/secrets.ts'
import type { Suite, TestCase } from '../model.ts'
import type {
  FullResult,
  Progress,
  Reporter,
  ReporterContext,
  TestError,
  TestResult,
  TestStep,
} from '../reporterApi.ts'
import { configForReporters } from './redact.ts'

const reportersDir = fileURLToPath(new URL('../../../reporters/', import.meta.url))
/** Built-in reporter names, in the order they are listed in error messages. */
export const builtinReporterNames = ['list', 'line', 'dot', 'json', 'junit', 'blob', 'html', 'null']

export function availableBuiltins(): string[] {
  return builtinReporterNames.filter(n => existsSync(path.join(reportersDir, `${n}.ts`)))
}

export class ReporterError extends Error {
  readonly vtUserError = true
}

function looksLikePath(name: string): boolean {
  return name.startsWith('.') || name.startsWith('/') || /\.(m|c)?(t|j)sx?$/.test(name)
}

/** Where a reporter's module is: a built-in file, a path relative to configDir, or a package from configDir. */
export function resolveReporterModule(name: string, configDir: string): string {
  if (!looksLikePath(name)) {
    const builtin = path.join(reportersDir, `${name}.ts`)
    if (builtinReporterNames.includes(name) && existsSync(builtin)) return builtin
  }
  const unknown = () =>
    new ReporterError(
      `vt: unknown reporter "${name}". Built-in reporters: ${availableBuiltins().join(', ')}; a custom reporter is a module path relative to the config (${configDir}) whose default export is a Reporter class`,
    )
  if (looksLikePath(name)) {
    const file = path.resolve(configDir, name)
    if (!existsSync(file)) throw unknown()
    return file
  }
  try {
    return createRequire(path.join(configDir, 'noop.js')).resolve(name)
  } catch {
    throw unknown()
  }
}

export async function createReporters(
  descriptions: ReporterDescription[],
  context: ReporterContext,
): Promise<Reporter[]> {
  const out: Reporter[] = []
  for (const [name, options] of descriptions) {
    const file = resolveReporterModule(name, context.configDir)
    let mod: any
    try {
      mod = await import(pathToFileURL(file).href)
    } catch (e: any) {
      throw new ReporterError(`vt: failed to load reporter "${name}" from ${file}:\n${e?.stack ?? e}`)
    }
    let R = mod?.default
    if (R && typeof R === 'object' && typeof R.default === 'function') R = R.default
    if (typeof R !== 'function')
      throw new ReporterError(`vt: reporter "${name}" (${file}) must default-export a class implementing Reporter`)
    out.push(new R({ ...(options ?? {}), ...context }))
  }
  return out
}

/**
 * Calls every reporter for every event. A reporter that throws does not stop the run or the other reporters: its
 * error is printed once per event kind.
 */
export class Multiplexer implements Reporter {
  private readonly warned = new Set<string>()
  constructor(readonly reporters: Reporter[]) {}

  private each(event: string, call: (r: Reporter) => unknown): void {
    for (const r of this.reporters) {
      try {
        call(r)
      } catch (e: any) {
        this.warn(r, event, e)
      }
    }
  }

  private warn(r: Reporter, event: string, e: any): void {
    const key = `${r.constructor?.name}:${event}`
    if (this.warned.has(key)) return
    this.warned.add(key)
    process.stderr.write(`vt: reporter ${r.constructor?.name ?? '?'} failed in ${event}: ${e?.stack ?? e}\n`)
  }

  printsToStdio(): boolean {
    return this.reporters.some(r => (r.printsToStdio ? r.printsToStdio() : true))
  }
  onBegin(config: FullConfig, suite: Suite): void {
    const shown = configForReporters(config)
    this.each('onBegin', r => r.onBegin?.(shown, suite))
  }
  onTestBegin(test: TestCase, result: TestResult): void {
    this.each('onTestBegin', r => r.onTestBegin?.(test, result))
  }
  onStepBegin(test: TestCase, result: TestResult, step: TestStep): void {
    this.each('onStepBegin', r => r.onStepBegin?.(test, result, step))
  }
  onStepEnd(test: TestCase, result: TestResult, step: TestStep): void {
    this.each('onStepEnd', r => r.onStepEnd?.(test, result, step))
  }
  onProgress(test: TestCase, result: TestResult, step: TestStep | undefined, progress: Progress): void {
    this.each('onProgress', r => r.onProgress?.(test, result, step, progress))
  }
  onStdOut(chunk: string | Buffer, test?: TestCase, result?: TestResult): void {
    this.each('onStdOut', r => r.onStdOut?.(chunk, test, result))
  }
  onStdErr(chunk: string | Buffer, test?: TestCase, result?: TestResult): void {
    this.each('onStdErr', r => r.onStdErr?.(chunk, test, result))
  }
  onTestEnd(test: TestCase, result: TestResult): void {
    this.each('onTestEnd', r => r.onTestEnd?.(test, result))
  }
  onError(error: TestError): void {
    // Errors of the main process itself (globalSetup, cluster start) did not pass through redactMessage.
    redactDeep(error)
    this.each('onError', r => r.onError?.(error))
  }
  async onEnd(result: FullResult): Promise<{ status?: FullResult['status'] } | undefined> {
    let override: FullResult['status'] | undefined
    for (const r of this.reporters) {
      try {
        const out = await r.onEnd?.({ ...result, status: override ?? result.status })
        if (out?.status) override = out.status
      } catch (e: any) {
        this.warn(r, 'onEnd', e)
      }
    }
    return override ? { status: override } : undefined
  }
  async onExit(): Promise<void> {
    for (const r of this.reporters) {
      try {
        await r.onExit?.()
      } catch (e: any) {
        this.warn(r, 'onExit', e)
      }
    }
  }
}
