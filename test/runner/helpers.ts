// Helpers for the runner's unit tests: temporary spec projects that import vt's spec API by absolute path.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const testTypePath = path.join(repoRoot, 'src', 'runner', 'testType.ts')
export const expectPath = path.join(repoRoot, 'src', 'expect', 'index.ts')

/** Creates a temp dir with the given files (plus an ESM package.json); returns its path. */
export function writeProject(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-runner-test-'))
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n')
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, content.replaceAll('$TEST', testTypePath).replaceAll('$EXPECT', expectPath))
  }
  return dir
}

export function removeProject(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true })
}
