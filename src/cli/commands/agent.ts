// `vt agent`: serve this host to vt controllers. The flags live in agent/cli.ts (shared with running
// agent/main.ts directly, as the embedded cluster does); the agent is loaded only when the command runs.
import { addAgentCommand } from '../../../agent/cli.ts'
import type { CliCommand } from './types.ts'

const agent: CliCommand = {
  name: 'agent',
  register(program) {
    addAgentCommand(program)
  },
}

export default agent
