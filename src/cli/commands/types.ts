// The shape of one CLI command module. Each command lives in its own file under src/cli/commands/ and is listed
// once in ./index.ts; heavy implementations are imported inside the action so `vt --help` stays fast.
import type { Command } from 'commander'

export interface CliCommand {
  /** The command's name as typed (`vt <name>`), used for ordering and error messages. */
  name: string
  /** Adds the command, its options and its action to the program. */
  register(program: Command): void
}
