// Test groups: the unit handed to one worker. Tests of a file that share a worker hash and repeat index run in
// order in one group; in parallel mode (fullyParallel or describe.parallel) each test is its own group; the
// outermost serial describe stays together (and is retried as a whole).
import type { FullProject } from '../../config/types.ts'
import type { Suite, TestCase } from '../model.ts'

export interface TestGroup {
  projectId: string
  /** Absolute path of the spec file. */
  file: string
  repeatEachIndex: number
  /** The tests' fixture worker hash with the repeat index appended: workers are reused only for equal hashes. */
  workerHash: string
  tests: TestCase[]
}

/** The effective mode of a test: inside a serial describe, parallel, or default (file order). */
function placement(test: TestCase, project: FullProject): { serialRoot?: Suite; parallel: boolean } {
  let serialRoot: Suite | undefined
  let explicit: 'serial' | 'parallel' | undefined
  for (let s: Suite | undefined = test.parent; s && s.type !== 'project' && s.type !== 'root'; s = s.parent) {
    if (s.mode === 'serial') serialRoot = s
    if (!explicit && s.mode !== 'default') explicit = s.mode
  }
  if (serialRoot) return { serialRoot, parallel: false }
  const parallel = explicit ? explicit === 'parallel' : project.fullyParallel
  return { parallel }
}

export function outermostSerialSuite(test: TestCase): Suite | undefined {
  let serialRoot: Suite | undefined
  for (let s: Suite | undefined = test.parent; s && s.type !== 'project'; s = s.parent)
    if (s.mode === 'serial') serialRoot = s
  return serialRoot
}

export function groupWorkerHash(test: TestCase): string {
  return `${test._workerHash}-r${test.repeatEachIndex}`
}

/** Groups the tests of one file suite (already filtered, with ids and worker hashes) in declaration order. */
export function createFileGroups(fileSuite: Suite, project: FullProject): TestGroup[] {
  const groups: TestGroup[] = []
  const general = new Map<string, TestGroup>()
  const serial = new Map<Suite, TestGroup>()
  const file = fileSuite._file ?? fileSuite.title
  const newGroup = (test: TestCase): TestGroup => {
    const g: TestGroup = {
      projectId: project.id,
      file,
      repeatEachIndex: test.repeatEachIndex,
      workerHash: groupWorkerHash(test),
      tests: [],
    }
    groups.push(g)
    return g
  }
  for (const test of fileSuite.allTests()) {
    const { serialRoot, parallel } = placement(test, project)
    const hash = groupWorkerHash(test)
    if (serialRoot) {
      let g = serial.get(serialRoot)
      if (!g) serial.set(serialRoot, (g = newGroup(test)))
      g.tests.push(test)
    } else if (parallel) {
      newGroup(test).tests.push(test)
    } else {
      let g = general.get(hash)
      if (!g) general.set(hash, (g = newGroup(test)))
      g.tests.push(test)
    }
  }
  return groups
}
