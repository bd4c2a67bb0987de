// Where file-writing reporters (json, junit, blob) put their report: the `outputFile` option (relative to the
// config's folder), else an environment variable (relative to the working directory), else stdout.
import fs from 'node:fs'
import path from 'node:path'

export function resolveOutputFile(
  options: { outputFile?: unknown; configDir?: string },
  envName: string,
): string | undefined {
  if (options.outputFile !== undefined) {
    if (typeof options.outputFile !== 'string' || !options.outputFile)
      throw new Error(
        `reporter option outputFile must be a non-empty string, got ${JSON.stringify(options.outputFile)}`,
      )
    return path.resolve(options.configDir ?? process.cwd(), options.outputFile)
  }
  const fromEnv = process.env[envName]
  if (fromEnv) return path.resolve(process.cwd(), fromEnv)
  return undefined
}

export function writeReport(file: string | undefined, text: string, stdout: { write(s: string): unknown }): void {
  if (!file) {
    stdout.write(text)
    return
  }
  fs.mkdirSync(path.dirname(file), { recursive: true })
  // Write then rename, so that a reader never sees half a report.
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, text)
  fs.renameSync(tmp, file)
}
