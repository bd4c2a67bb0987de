// `vt console [vm | host/vm] [--host <host>]`: an interactive shell in a VM or on a host of a paused
// `vt test --debug` run, found through its state file (src/debug/state.ts). Ctrl-] detaches.
import type { Command } from 'commander'
import { CliError } from '../errors.ts'
import type { CliCommand } from './types.ts'

interface ConsoleFlags {
  host?: string
  run?: string
  list?: boolean
}

const command: CliCommand = {
  name: 'console',
  register(program: Command) {
    program
      .command('console')
      .description('a shell in a VM or on a host of a paused `vt test --debug` run (Ctrl-] detaches)')
      .argument('[vm]', 'the VM: its name, or host/name when several hosts have one of that name')
      .option('--host <name>', 'a shell on this host (in its network namespace) instead of a VM')
      .option('--run <pid>', 'which paused run, when several are paused (the pid of its vt test)')
      .option('--list', 'list the paused runs, their hosts and VMs')
      .action(async (vm: string | undefined, flags: ConsoleFlags) => {
        const { listDebugStates, debugDir } = await import('../../debug/state.ts')
        const { describeTargets, resolveTarget } = await import('../../debug/targets.ts')
        const runs = listDebugStates()
        if (runs.length === 0) {
          throw new CliError(
            `vt console: no paused run: start one with \`vt test --debug\` and wait for it to pause (looked in ${debugDir()})`,
          )
        }
        if (flags.list) {
          for (const { state } of runs) {
            process.stdout.write(
              `run ${state.pid}: ${state.test.title} (${state.test.location}), paused at ${state.reason}\n`,
            )
            process.stdout.write(`${describeTargets(state, runs.length > 1 ? ` --run ${state.pid}` : '').join('\n')}\n`)
          }
          return
        }
        const chosen = flags.run
          ? runs.find(r => String(r.state.pid) === flags.run)
          : runs.length === 1
            ? runs[0]
            : undefined
        if (!chosen) {
          const pids = runs.map(r => r.state.pid).join(', ')
          throw new CliError(
            flags.run
              ? `vt console: no paused run with pid ${flags.run} (paused runs: ${pids})`
              : `vt console: ${runs.length} runs are paused (pids ${pids}): pick one with --run <pid>`,
          )
        }
        let resolved: ReturnType<typeof resolveTarget>
        try {
          resolved = resolveTarget(chosen.state, vm, flags.host)
        } catch (e) {
          throw new CliError(`vt console: ${(e as Error).message}`)
        }
        const { AgentClient } = await import('../../cluster/client.ts')
        const { attachTerminal } = await import('../../debug/terminal.ts')
        const { host, target } = resolved
        const client = await AgentClient.connect({
          url: host.url,
          token: host.token,
          name: host.name,
          tls: host.tls,
          reconnect: false,
          // A killed `vt console` leaves its host shell behind for at most this long.
          leaseSeconds: 10,
          clientName: 'vt console',
        })
        try {
          process.exitCode = await attachTerminal(client, target, {
            stdin: process.stdin,
            stdout: process.stdout,
            stderr: process.stderr,
          })
        } catch (e) {
          throw new CliError(`vt console: ${(e as Error).message}`)
        } finally {
          await client.close()
        }
      })
  },
}

export default command
