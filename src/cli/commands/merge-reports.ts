// `vt merge-reports [dir]`: replays the blob reports of several shards (`vt test --shard i/n --reporter blob`,
// each writing blob-report/report-<i>.jsonl) as one run into any reporters, e.g. one JUnit file for CI.
import type { Command } from 'commander'
import { CliError } from '../errors.ts'
import type { CliCommand } from './types.ts'

interface MergeFlags {
  reporter?: string
  config?: string
}

const command: CliCommand = {
  name: 'merge-reports',
  register(program: Command) {
    program
      .command('merge-reports')
      .description('merge the blob reports of sharded runs into one report')
      .argument('[dir]', 'directory holding the *.jsonl blob files', 'blob-report')
      .option('--reporter <names>', "reporters, comma separated (default: the config file's, else list)")
      .option('-c, --config <file>', 'config file whose reporters to use')
      .action(async (dir: string, flags: MergeFlags) => {
        const { existsSync, readdirSync, statSync } = await import('node:fs')
        const path = await import('node:path')
        const { mergeBlobReports } = await import('../../../reporters/blobMerge.ts')
        const { createReporters } = await import('../../runner/main/reporters.ts')
        const { loadConfig, resolveConfigFile } = await import('../../config/load.ts')

        const where = path.resolve(dir)
        if (!existsSync(where) || !statSync(where).isDirectory())
          throw new CliError(`vt merge-reports: no directory ${where}; give the folder the blob reporter wrote to`)
        const files = readdirSync(where)
          .filter(f => f.endsWith('.jsonl'))
          .sort()
          .map(f => path.join(where, f))
        if (files.length === 0)
          throw new CliError(`vt merge-reports: no *.jsonl blob files in ${where} (run vt test --reporter blob first)`)

        const config = await loadConfig(resolveConfigFile(process.cwd(), flags.config))
        const descriptions = flags.reporter
          ? flags.reporter
              .split(',')
              .map(s => s.trim())
              .filter(Boolean)
              .map(name => [name] as [string])
          : config.configFile
            ? config.reporter.filter(([name]) => name !== 'blob')
            : [['list'] as [string]]
        const configDir = config.configFile ? path.dirname(config.configFile) : process.cwd()
        const reporters = await createReporters(descriptions, {
          rootDir: config.rootDir,
          outputDir: path.join(configDir, 'test-results'),
          configDir,
        })
        const result = await mergeBlobReports(files, reporters, config.rootDir)
        process.exitCode = result.status === 'passed' ? 0 : 1
      })
  },
}

export default command
