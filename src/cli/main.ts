// The `vt` command line. bin/vt.js registers tsx and calls main(process.argv). Commands come from
// ./commands/index.ts; this file sets up the program, version, help and error reporting shared by all of them.
import { readFileSync } from 'node:fs'
import { Command, CommanderError, type Option } from 'commander'
import { commands } from './commands/index.ts'
import { CliError } from './errors.ts'

export { CliError }

function version(): string {
  return String(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version)
}

class CommandFailure extends Error {
  constructor(
    readonly error: CommanderError,
    readonly command: Command,
  ) {
    super(error.message)
  }
}

function flagsOf(cmd: Command): string[] {
  const options: readonly Option[] = cmd.options
  return [...options.map(o => o.flags), '-h, --help']
}

function listOptions(cmd: Command): string {
  const name = cmd.parent ? `vt ${cmd.name()}` : 'vt'
  return `valid options of ${name}:\n${flagsOf(cmd)
    .map(f => `  ${f}`)
    .join('\n')}`
}

function listCommands(program: Command): string {
  return `commands:\n${program.commands.map(c => `  ${c.name().padEnd(10)} ${c.description()}`).join('\n')}\n  help [cmd]  display help for a command`
}

export function buildProgram(): Command {
  const program = new Command('vt')
    .description('Playwright for clusters of virtual machines')
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'display help')
    .showSuggestionAfterError(true)
  for (const c of commands) c.register(program)
  const configure = (cmd: Command) => {
    cmd.exitOverride(err => {
      throw new CommandFailure(err, cmd)
    })
    cmd.commands.forEach(configure)
  }
  configure(program)
  return program
}

function isUserError(e: unknown): e is Error {
  return e instanceof Error && (e.name === 'ConfigError' || e.name === 'CliError' || (e as any).vtUserError === true)
}

/** Runs the CLI; returns (and sets as process.exitCode) the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram()
  let code: number
  try {
    await program.parseAsync(argv)
    code = typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (e) {
    if (e instanceof CommandFailure) {
      const err = e.error
      // commander already printed help, the version, or its error line; add what exists.
      if (err.code === 'commander.unknownOption') process.stderr.write(`${listOptions(e.command)}\n`)
      else if (err.code === 'commander.unknownCommand') process.stderr.write(`${listCommands(program)}\n`)
      else if (err.code === 'commander.excessArguments')
        process.stderr.write(`run "vt help ${e.command.name()}" for usage\n`)
      code = err.exitCode
    } else if (isUserError(e)) {
      process.stderr.write(`${e.message}\n`)
      code = (e as any).exitCode ?? 1
    } else {
      process.stderr.write(`vt: internal error: ${(e as any)?.stack ?? e}\n`)
      code = 1
    }
  }
  process.exitCode = code
  // Exit even if something (a leaked handle in a user's fixture) keeps the event loop alive.
  setTimeout(() => process.exit(code), 2000).unref()
  return code
}

export { CommanderError }
