// Loading a spec file: import it while the spec API records declarations into a fresh file Suite. Syntax and
// import errors do not throw; they become the suite's `_loadError` with the file:line that caused them.
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { messageOf, safeGet, safeInstanceOf } from '../util/thrown.ts'
import { codeFrame, errorAt, formatLocation, serializeError } from './errors.ts'
import { computeTestId, Suite, TestCase } from './model.ts'
import type { Location, TestError } from './reporterApi.ts'
import { setCurrentlyLoadingFileSuite } from './worker/globals.ts'

/** How many times each file has been imported in this process: a second load needs a fresh module instance. */
const importCount = new Map<string, number>()
/** Loads run one after another: declarations go to a process-wide "current file", and imports are async. */
let queue: Promise<unknown> = Promise.resolve()

export function relativeFileTitle(file: string, rootDir: string): string {
  return path.relative(rootDir, file).split(path.sep).join('/')
}

export function loadTestFile(file: string, rootDir: string): Promise<Suite> {
  const result = queue.then(() => loadNow(path.resolve(file), path.resolve(rootDir)))
  queue = result.catch(() => {})
  return result
}

async function loadNow(file: string, rootDir: string): Promise<Suite> {
  const suite = new Suite(relativeFileTitle(file, rootDir), 'file')
  suite._file = file
  suite.location = { file, line: 0, column: 0 }
  const count = importCount.get(file) ?? 0
  importCount.set(file, count + 1)
  const url = pathToFileURL(file).href + (count ? `?vt-load=${count}` : '')
  setCurrentlyLoadingFileSuite(suite)
  try {
    await import(url)
  } catch (error) {
    suite._loadError = loadError(error, file)
  } finally {
    setCurrentlyLoadingFileSuite(undefined)
  }
  if (!suite._loadError) {
    const duplicate = findDuplicateTitles(suite)
    if (duplicate) suite._loadError = duplicate
  }
  return suite
}

/** Turns an import failure into a TestError whose location is inside the failing file when possible. */
function loadError(error: unknown, file: string): TestError {
  // esbuild (through tsx) reports syntax errors as "Transform failed ...\n/path/file.ts:2:5: ERROR: ...".
  const message = messageOf(error)
  const esbuild = /^(.*?):(\d+):(\d+): ERROR: (.*)$/m.exec(message)
  if (esbuild) {
    const location: Location = {
      file: path.resolve(esbuild[1]),
      line: Number(esbuild[2]),
      column: Number(esbuild[3]) + 1,
    }
    return located(`SyntaxError: ${esbuild[4]}`, location)
  }
  // Node's own SyntaxError for plain JS has no user frame; its stack starts with "file:line".
  if (safeInstanceOf(error, SyntaxError) && typeof (error as SyntaxError).stack === 'string') {
    const syntax = error as SyntaxError
    const m = /^(?:file:\/\/)?(\/[^\n:]+):(\d+)\n/.exec(syntax.stack ?? '')
    if (m) return located(`SyntaxError: ${syntax.message}`, { file: m[1], line: Number(m[2]), column: 1 })
  }
  // A missing import: find the import line in the file that asked for it.
  const code = safeGet(error, 'code')
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') {
    const m = /Cannot find (?:module|package) '([^']+)' imported from (.+)$/m.exec(message)
    const importer = m ? m[2].trim().replace(/^file:\/\//, '') : file
    const location = m ? findImportLine(importer, m[1]) : undefined
    return location ? located(message, location) : errorAt(message, { file, line: 1, column: 1 })
  }
  const serialized = serializeError(error, { file, line: 1, column: 1 })
  if (!serialized.location) serialized.location = { file, line: 1, column: 1 }
  serialized.message = `Error while loading ${formatLocation(serialized.location)}: ${serialized.message}`
  return serialized
}

function located(message: string, location: Location): TestError {
  const snippet = codeFrame(location)
  return { message: `${message}\n    at ${formatLocation(location)}`, location, ...(snippet ? { snippet } : {}) }
}

function findImportLine(importer: string, specifier: string): Location | undefined {
  let source: string
  try {
    source = fs.readFileSync(importer, 'utf8')
  } catch {
    return undefined
  }
  const base = path.basename(specifier)
  const lines = source.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const col = lines[i].indexOf(base)
    if (col !== -1 && /\b(import|from|require)\b/.test(lines[i]))
      return { file: importer, line: i + 1, column: col + 1 }
  }
  return undefined
}

/** Title path of a test inside its file (describe titles and the test title; anonymous describes omitted). */
export function titlePathInFile(test: TestCase): string[] {
  const titles = [test.title]
  for (let s: Suite | undefined = test.parent; s && s.type === 'describe'; s = s.parent)
    if (s.title) titles.unshift(s.title)
  return titles
}

function findDuplicateTitles(suite: Suite): TestError | undefined {
  const seen = new Map<string, TestCase>()
  for (const test of suite.allTests()) {
    const key = JSON.stringify(titlePathInFile(test))
    const first = seen.get(key)
    if (first) {
      return errorAt(
        `Duplicate test title "${titlePathInFile(test).join(' › ')}" in ${suite.title}: first declared at ${formatLocation(first.location)}, again at ${formatLocation(test.location)}. Test titles must be unique within a file.`,
        test.location,
      )
    }
    seen.set(key, test)
  }
  return undefined
}

/** Sets `id` and `repeatEachIndex` on every test of a file suite. Main and worker both call it. */
export function assignTestIds(fileSuite: Suite, projectId: string, repeatEachIndex: number): void {
  for (const test of fileSuite.allTests()) {
    test.repeatEachIndex = repeatEachIndex
    test.id = computeTestId(projectId, fileSuite.title, titlePathInFile(test), repeatEachIndex)
  }
}

/**
 * A deep copy of a file (or describe) suite: the planner clones the loaded tree per project and repeat index.
 * Declarations (functions, hooks, uses, modifiers) are shared; per-run fields (results, ids) are fresh.
 */
export function cloneSuite(suite: Suite): Suite {
  const copy = new Suite(suite.title, suite.type)
  copy.location = suite.location
  copy._file = suite._file
  copy._loadError = suite._loadError
  copy.mode = suite.mode
  copy.retries = suite.retries
  copy.timeout = suite.timeout
  copy.only = suite.only
  copy.hooks.push(...suite.hooks)
  copy.uses.push(...suite.uses)
  copy._seed = suite._seed
  copy.modifiers.push(...suite.modifiers)
  copy.annotations.push(...suite.annotations)
  copy.tags.push(...suite.tags)
  for (const entry of suite.entries) {
    if (entry instanceof Suite) copy._addSuite(cloneSuite(entry))
    else {
      const test = new TestCase(entry.title, entry.fn, entry._testType, entry.location)
      test.annotations.push(...entry.annotations)
      test.tags.push(...entry.tags)
      test.modifiers.push(...entry.modifiers)
      test.expectedStatus = entry.expectedStatus
      test.timeout = entry.timeout
      test.retries = entry.retries
      test.only = entry.only
      test._prop = entry._prop
      copy._addTest(test)
    }
  }
  return copy
}
