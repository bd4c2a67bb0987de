// What `vt test` asks the runner to do: CLI flags after parsing. Config-level overrides travel to workers
// (ConfigOverrides); the rest (filters, grep, project selection, list, last-failed) only concern the main process.
import type { ConfigOverrides } from '../ipc.ts'

export interface RunOptions {
  /** Directory the command runs in: relative filters, -c and --output resolve against it. */
  cwd: string
  /** `-c/--config`: a config file or a directory. */
  config?: string
  /** Positional filters: path substrings or regexes, optionally with `:line` (or `:line:column`). */
  filters: string[]
  /** `--project`, repeatable, with `*` wildcards. */
  projects: string[]
  grep?: string
  grepInvert?: string
  list: boolean
  lastFailed: boolean
  quiet: boolean
  /** `-j`: a number or a percentage of the cores (resolved into overrides.workers). */
  workers?: string
  overrides: ConfigOverrides
}
