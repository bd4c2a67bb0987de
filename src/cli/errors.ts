// Errors of the `vt` command line, importable by every command without importing the program itself.

/** An error meant for the user: printed as its message only, with the given exit code. */
export class CliError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}
