// Every `vt` subcommand, one module each. To add a command: write src/cli/commands/<name>.ts default-exporting a
// CliCommand, and add one import and one entry below. `help` and `--version` are built into the program.
import agent from './agent.ts'
import console from './console.ts'
import doctor from './doctor.ts'
import image from './image.ts'
import init from './init.ts'
import mergeReports from './merge-reports.ts'
import setup from './setup.ts'
import showReport from './show-report.ts'
import test from './test.ts'
import type { CliCommand } from './types.ts'

export type { CliCommand } from './types.ts'

export const commands: CliCommand[] = [agent, console, doctor, image, init, mergeReports, setup, showReport, test]
