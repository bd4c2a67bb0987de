// Turning thrown values into TestErrors: a clean stack (vt's own frames and node internals removed), the
// location of the first frame in a user file, and a plain-text code frame of that line. Stack line numbers
// are the original TypeScript lines: tsx installs source maps for every file it transforms.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { causeChain, describeValue, isErrorLike, messageOf, safeGet, stringProp, toJsonSafe } from '../util/thrown.ts'
import type { Location, TestError } from './results.ts'

// @babel/code-frame ships no types; this is the one function we use.
const { codeFrameColumns } = createRequire(import.meta.url)('@babel/code-frame') as {
  codeFrameColumns(
    source: string,
    location: { start: { line: number; column?: number } },
    options: { highlightCode?: boolean; linesAbove?: number; linesBelow?: number; message?: string },
  ): string
}

/** Root of the vt package (two levels above src/runner). */
export const vtRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

// Folders of vt whose frames a user never needs to see. examples/ and test/ are user-like code.
const internalDirs = ['src', 'fixtures', 'agent', 'reporters', 'bin'].map(d => path.join(vtRoot, d) + path.sep)

export interface StackFrame {
  file: string
  line: number
  column: number
  function?: string
  raw: string
}

const frameRe = /^\s*at (?:(?:async )?(.*?) \()?(.*?):(\d+):(\d+)\)?\s*$/

/** Parses one V8 stack line ("    at fn (file:1:2)" or "    at file:1:2"); undefined for anything else. */
export function parseStackLine(raw: string): StackFrame | undefined {
  const m = frameRe.exec(raw)
  if (!m) return undefined
  let file = m[2]
  if (file.startsWith('async ')) file = file.slice(6)
  if (file.startsWith('file://')) {
    try {
      file = fileURLToPath(file)
    } catch {
      return undefined
    }
  }
  const q = file.indexOf('?')
  if (q !== -1 && !file.startsWith('node:')) file = file.slice(0, q)
  return { file, line: Number(m[3]), column: Number(m[4]), function: m[1], raw }
}

export function isNodeInternal(file: string): boolean {
  return file.startsWith('node:') || file.startsWith('internal/') || !path.isAbsolute(file)
}

/** A frame from vt's own implementation, node_modules or node itself. */
export function isInternalFrame(file: string): boolean {
  if (process.env.VTDEBUGIMPL) return isNodeInternal(file)
  if (isNodeInternal(file)) return true
  if (file.includes(`${path.sep}node_modules${path.sep}`)) return true
  return internalDirs.some(d => file.startsWith(d))
}

/** Frames of the current stack (or of `stack`) that belong to user code. */
export function userFrames(stack: string | undefined): StackFrame[] {
  if (!stack) return []
  const frames: StackFrame[] = []
  for (const line of stack.split('\n')) {
    const frame = parseStackLine(line)
    if (frame && !isInternalFrame(frame.file)) frames.push(frame)
  }
  return frames
}

/**
 * Where the caller of a vt API is: the first stack frame outside the runner's own modules. Built-in
 * fixtures (fixtures/index.ts) count as callers, so registrations there get a real location.
 */
const vtInternalDirs = ['src', 'fixtures', 'agent', 'reporters'].map(d => path.join(vtRoot, d) + path.sep)

export function captureLocation(options: { skipVt?: boolean } = {}): Location {
  const saved = Error.stackTraceLimit
  Error.stackTraceLimit = 30
  const stack = new Error().stack ?? ''
  Error.stackTraceLimit = saved
  const runnerDir = path.join(vtRoot, 'src', 'runner') + path.sep
  const expectDir = path.join(vtRoot, 'src', 'expect') + path.sep
  for (const line of stack.split('\n').slice(1)) {
    const frame = parseStackLine(line)
    if (!frame || isNodeInternal(frame.file)) continue
    if (frame.file.startsWith(runnerDir) || frame.file.startsWith(expectDir)) continue
    // Domain APIs (Vm, Host, migrate, faults, ...) point at the spec line that called them, not at vt's own code.
    if (options.skipVt && vtInternalDirs.some(d => frame.file.startsWith(d))) continue
    // Other packages' wrappers are skipped; vt's own built-in fixtures count even when vt is in node_modules.
    if (frame.file.includes(`${path.sep}node_modules${path.sep}`) && !frame.file.startsWith(vtRoot + path.sep)) continue
    return { file: frame.file, line: frame.line, column: frame.column }
  }
  return { file: '<unknown>', line: 0, column: 0 }
}

export function formatLocation(location: Location | undefined): string {
  if (!location) return '<unknown>'
  return `${location.file}:${location.line}:${location.column}`
}

/** A code frame (no colors) around `location`, or undefined when the file cannot be read. */
export function codeFrame(location: Location, message?: string): string | undefined {
  let source: string
  try {
    source = fs.readFileSync(location.file, 'utf8')
  } catch {
    return undefined
  }
  if (location.line < 1) return undefined
  return codeFrameColumns(
    source,
    { start: { line: location.line, column: location.column || 1 } },
    { highlightCode: false, linesAbove: 2, linesBelow: 2, message },
  )
}

/** Keeps the message lines of a V8 stack and the user frames; drops vt's, node_modules' and node's frames. */
export function filterStack(stack: string): string {
  const lines = stack.split('\n')
  const out: string[] = []
  let seenFrame = false
  for (const line of lines) {
    const frame = parseStackLine(line)
    if (!frame) {
      // Message lines come before the first frame; anything unparsable after them is kept too.
      if (!seenFrame || !/^\s*at /.test(line)) out.push(line)
      continue
    }
    seenFrame = true
    if (!isInternalFrame(frame.file)) out.push(line)
  }
  return out.join('\n')
}

/**
 * Serializes anything thrown into a TestError; never throws, whatever was thrown (a primitive, undefined, a
 * null-prototype object, throwing getters, an Error whose cause chain loops). `fallbackLocation` is used
 * when no user frame is found.
 */
export function serializeError(error: unknown, fallbackLocation?: Location): TestError {
  try {
    return serializeUnsafe(error, fallbackLocation)
  } catch (internal) {
    // Last resort: even inspecting the value failed. Say so instead of losing the test's failure.
    return { message: `thrown value that vt could not read (${describeValue(internal, 300)})` }
  }
}

function serializeUnsafe(error: unknown, fallbackLocation?: Location): TestError {
  if (!isErrorLike(error)) {
    const result: TestError = { message: `thrown value: ${describeValue(error)}` }
    if (fallbackLocation) {
      result.location = fallbackLocation
      result.snippet = codeFrame(fallbackLocation)
    }
    return result
  }
  const message = messageOf(error)
  const rawStack = stringProp(error, 'stack') ?? `${stringProp(error, 'name') ?? 'Error'}: ${message}`
  const stack = filterStack(rawStack)
  const frame = userFrames(rawStack)[0]
  const ownLocation = safeGet(error, 'location')
  const own = typeof safeGet(ownLocation, 'file') === 'string' ? (ownLocation as Location) : undefined
  const location: Location | undefined =
    own ?? (frame ? { file: frame.file, line: frame.line, column: frame.column } : fallbackLocation)
  const result: TestError = { message, stack }
  if (location) {
    result.location = location
    const snippet = codeFrame(location)
    if (snippet) result.snippet = snippet
  }
  const details = safeGet(error, 'details')
  if (details && typeof details === 'object') result.details = toJsonSafe(details) as Record<string, unknown>
  const { causes, cycle, cut } = causeChain(error)
  for (const cause of causes) result.stack += `\n[cause]: ${describeCause(cause)}`
  if (cycle) result.stack += '\n[cause]: (cycle: the cause chain leads back to an error shown above)'
  if (cut) result.stack += '\n[cause]: (more causes not shown)'
  return result
}

function describeCause(cause: unknown): string {
  if (!isErrorLike(cause)) return `thrown value: ${describeValue(cause)}`
  const stack = stringProp(cause, 'stack')
  return stack ? filterStack(stack) : messageOf(cause)
}

/** An Error whose location is given explicitly (load-time validation errors point at a declaration). */
export class LocatedError extends Error {
  location: Location
  constructor(message: string, location: Location) {
    super(message)
    this.name = 'Error'
    this.location = location
  }
}

/** A TestError for a message at a known location (fixture validation, duplicate titles, ...). */
export function errorAt(message: string, location: Location | undefined): TestError {
  const result: TestError = { message: location ? `${message}\n    at ${formatLocation(location)}` : message }
  if (location) {
    result.location = location
    const snippet = codeFrame(location)
    if (snippet) result.snippet = snippet
  }
  return result
}
