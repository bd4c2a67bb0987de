// `vt agent` run directly, without the rest of the CLI (the embedded cluster starts agents this way):
// `node --import tsx agent/main.ts --listen 127.0.0.1:0 --token-env VT_TOKEN`.
import { Command } from 'commander'
import { addAgentCommand } from './cli.ts'
import { runAgent } from './run.ts'

const program = new Command('vt').exitOverride(err => process.exit(err.exitCode))
addAgentCommand(program, runAgent)
await program.parseAsync(['node', 'vt', 'agent', ...process.argv.slice(2)])
