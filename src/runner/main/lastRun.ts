// `<outputDir>/.last-run.json`: the result of the previous run, for `--last-failed`. It lists the ids of the
// tests that failed and of the tests that were selected but never ran (interrupted, max failures, skipped
// because a dependency failed), so that rerunning them finishes the job.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { FullResult } from '../reporterApi.ts'

export interface LastRunInfo {
  status: FullResult['status']
  failedTests: string[]
  notRunTests: string[]
}

export function lastRunFile(outputDir: string): string {
  return path.join(outputDir, '.last-run.json')
}

export async function writeLastRun(outputDir: string, info: LastRunInfo): Promise<void> {
  await mkdir(outputDir, { recursive: true })
  const file = lastRunFile(outputDir)
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, `${JSON.stringify(info, null, 2)}\n`)
  await rename(tmp, file)
}

/** The previous run's info; undefined when there is no file. A corrupt file is an error naming it. */
export async function readLastRun(outputDir: string): Promise<LastRunInfo | undefined> {
  const file = lastRunFile(outputDir)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e: any) {
    if (e?.code === 'ENOENT') return undefined
    throw e
  }
  let data: any
  try {
    data = JSON.parse(text)
  } catch (e: any) {
    throw Object.assign(new Error(`vt: ${file} is not valid JSON (${e.message}); delete it and run again`), {
      vtUserError: true,
    })
  }
  const ids = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [])
  return { status: data?.status ?? 'failed', failedTests: ids(data?.failedTests), notRunTests: ids(data?.notRunTests) }
}
