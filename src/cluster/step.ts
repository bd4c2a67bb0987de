// Domain operations (faults, networks) reported as steps of the running test, located at the spec's call.
import { currentTestInfo } from '../runner/worker/globals.ts'

function callerLocation(): { file: string; line: number; column: number } {
  for (const line of new Error().stack?.split('\n').slice(1) ?? []) {
    const m = /\(?((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?$/.exec(line.trim())
    if (!m) continue
    const file = m[1].replace(/^file:\/\//, '')
    if (
      /\/src\/(cluster|vm|migration|runner)\//.test(file) ||
      file.includes('/node_modules/') ||
      file.includes('/fixtures/')
    )
      continue
    return { file, line: Number(m[2]), column: Number(m[3]) }
  }
  return { file: '<unknown>', line: 0, column: 0 }
}

/** Runs `body` as a step of the current test (or plainly outside a test). */
export function domainStep<T>(title: string, body: () => Promise<T>): Promise<T> {
  const info = currentTestInfo()
  if (!info) return body()
  return info._runStep(title, body, {}, callerLocation())
}
