// Runs the agent in this process: starts it, prints the ready line, stops it (reaping every session) on
// SIGINT/SIGTERM or, for embedded agents, when the parent closes our stdin.
import { readyLine } from '../src/protocol/ready.ts'
import { type AgentCliOptions, toAgentOptions } from './options.ts'
import { type RunningAgent, startAgent } from './server.ts'

export async function runAgent(opts: AgentCliOptions): Promise<RunningAgent> {
  let agent: RunningAgent
  try {
    agent = await startAgent({ ...toAgentOptions(opts), ownCgroup: true }) // a process of its own
  } catch (e) {
    process.stderr.write(`vt agent: ${(e as Error).message}\n`)
    process.exit(2)
  }
  // Nobody may be reading stdout any more (the ready line was read, then the reader died): never crash on it.
  process.stdout.on('error', () => {})
  // One machine-readable line on stdout: the embedded cluster waits for it.
  process.stdout.write(readyLine({ url: agent.url, pid: process.pid, name: agent.name }))
  let stopping = false
  const stop = (why: string) => {
    if (stopping) return
    stopping = true
    agent.log.info('stopping', { why })
    const force = setTimeout(() => process.exit(1), 15_000)
    force.unref()
    agent.stop().then(
      () => process.exit(0),
      e => {
        process.stderr.write(`vt agent: stop failed: ${e}\n`)
        process.exit(1)
      },
    )
  }
  // A bug in one call must not take the host's agent (and every session on it) down: log it and go on.
  process.on('unhandledRejection', e => agent.log.error('unhandled rejection', { error: String(e) }))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  if (opts.exitWithStdin) {
    process.stdin.on('end', () => stop('stdin closed'))
    process.stdin.on('error', () => stop('stdin closed'))
    process.stdin.resume()
  }
  return agent
}
