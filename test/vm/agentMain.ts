// Runs a real `vt agent` in this process: `node --import tsx test/vm/agentMain.ts --listen ... --state-dir ...`.
// Tests and benchmarks spawn it to get an agent process they can SIGKILL; flags as `vt agent`.
import { Command } from 'commander'
import type { AgentCliOptions } from '../../agent/cli.ts'
import { addAgentCommand } from '../../agent/cli.ts'
import { runAgent } from '../../agent/main.ts'

const program = new Command('vt').exitOverride(err => process.exit(err.exitCode))
addAgentCommand(program)
const agent = program.commands.find(c => c.name() === 'agent') as Command
// Replace the command's action so that it runs the agent here, without the CLI's exit after the action.
agent.action(async (opts: AgentCliOptions) => {
  await runAgent(opts)
})
program.parseAsync(['node', 'vt', 'agent', ...process.argv.slice(2)]).catch(err => {
  process.stderr.write(`agentMain: ${(err as Error).message}\n`)
  process.exit(2)
})
