// The `vt agent` command line: flags and their validation. Light on imports so that `vt --help` stays fast;
// the agent itself is loaded when the command runs.
import { type Command, InvalidArgumentError, Option } from 'commander'
import { LEASE_SECONDS } from '../src/protocol/wire.ts'
import { parseSize, VCPUS_PER_CORE } from '../src/util/capacity.ts'
import type { AgentCliOptions } from './options.ts'

export type { AgentCliOptions }

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

function leaseSeconds(value: string): number {
  const n = positiveInt(value)
  if (n < LEASE_SECONDS.min || n > LEASE_SECONDS.max)
    throw new InvalidArgumentError(`${n} is outside ${LEASE_SECONDS.min}..${LEASE_SECONDS.max} seconds`)
  return n
}

function size(value: string): number {
  let n: number
  try {
    n = parseSize(value)
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a size: give bytes or e.g. 512M, 8G`)
  }
  if (n < 64 * 1024 * 1024) throw new InvalidArgumentError(`"${value}" is less than 64M (a number alone is bytes)`)
  return n
}

function positiveInt(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`"${value}" is not a positive integer`)
  return n
}

/** Adds the `agent` command to a commander program (used by `vt` and by this file when run directly). */
export function addAgentCommand(program: Command, run?: (opts: AgentCliOptions) => Promise<unknown>): Command {
  return program
    .command('agent')
    .description('serve this host to vt controllers (exec, files, spawn, VMs) over an authenticated WebSocket')
    .option('--listen <host:port>', 'address to listen on (non-loopback needs TLS or --insecure)', '127.0.0.1:7070')
    .option('--token-file <file>', 'file holding the shared token')
    .option('--token-env <var>', 'environment variable holding the shared token')
    .option('--tls-cert <file>', 'TLS certificate (PEM)')
    .option('--tls-key <file>', 'TLS private key (PEM)')
    .option('--tls-ca <file>', 'require client certificates signed by this CA (PEM)')
    .option('--state-dir <dir>', 'where sessions, logs and files live (default /var/lib/vt-agent as root)')
    .option('--name <name>', 'host name reported to controllers (default: hostname)')
    .option('--label <key=value>', 'a label for host selection (repeatable)', collect, [])
    .option('--insecure', 'allow a non-loopback listen address without TLS')
    .option('--allow-root <dir>', 'a directory the files service may touch (repeatable)', collect, [])
    .option('--max-lease <seconds>', 'longest session lease a controller may ask for', leaseSeconds)
    .option('--capacity-memory <size>', 'memory VMs and reservations may book, e.g. 8G (default: all)', size)
    .option(
      '--capacity-cpus <n>',
      `vCPUs VMs and reservations may book (default: ${VCPUS_PER_CORE} per core)`,
      positiveInt,
    )
    .option('--advertise <address>', 'address controllers should use, when not the listen address')
    .option('--quiet', 'log only to <state-dir>/agent.log')
    .option('--confined', 'refuse exec, spawn, raw QEMU arguments, exec: migration URIs and HMP (shared labs)')
    .addOption(new Option('--exit-with-stdin', 'stop when stdin closes (embedded agents)').hideHelp())
    .action(async (opts: AgentCliOptions) => {
      await (run ?? (await import('./run.ts')).runAgent)(opts)
      // The agent ends the process itself when it stops (signal or closed stdin). Never hand control back to
      // the CLI, which exits once a command's action resolves.
      await new Promise<never>(() => {})
    })
}
