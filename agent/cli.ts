// The `vt agent` command line: flags and their validation. Light on imports so that `vt --help` stays fast;
// the agent itself is loaded when the command runs.
import { readFileSync, statSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { type Command, InvalidArgumentError, Option } from 'commander'
import { LEASE_SECONDS } from '../src/protocol/wire.ts'
import type { AgentOptions } from './server.ts'

export interface AgentCliOptions {
  listen: string
  tokenFile?: string
  tokenEnv?: string
  tlsCert?: string
  tlsKey?: string
  tlsCa?: string
  stateDir?: string
  name?: string
  label: string[]
  insecure?: boolean
  allowRoot: string[]
  maxLease?: number
  capacityMemory?: number
  capacityCpus?: number
  advertise?: string
  quiet?: boolean
  exitWithStdin?: boolean
}

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value)
  const port = m ? Number(m[3]) : Number.NaN
  if (!m || port > 65535) {
    throw new InvalidArgumentError(`"${value}" is not HOST:PORT (for example 127.0.0.1:7070 or [::1]:7070)`)
  }
  return { host: m[1] ?? m[2], port }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

function positiveInt(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`"${value}" is not a positive integer`)
  return n
}

function leaseSeconds(value: string): number {
  const n = positiveInt(value)
  if (n < LEASE_SECONDS.min || n > LEASE_SECONDS.max)
    throw new InvalidArgumentError(`${n} is outside ${LEASE_SECONDS.min}..${LEASE_SECONDS.max} seconds`)
  return n
}

function defaultStateDir(): string {
  if (process.getuid?.() === 0) return '/var/lib/vt-agent'
  return join(process.env.XDG_STATE_HOME ?? join(os.homedir(), '.local', 'state'), 'vt-agent')
}

function readToken(opts: AgentCliOptions): string {
  if (opts.tokenFile && opts.tokenEnv) throw new Error('give only one of --token-file and --token-env')
  if (opts.tokenFile) {
    const st = statSync(opts.tokenFile)
    if (st.mode & 0o077) {
      process.stderr.write(`vt agent: warning: token file ${opts.tokenFile} is readable by others (chmod 600 it)\n`)
    }
    return readFileSync(opts.tokenFile, 'utf8').trim()
  }
  if (opts.tokenEnv) {
    const token = process.env[opts.tokenEnv]
    if (!token) throw new Error(`environment variable ${opts.tokenEnv} (from --token-env) is empty or unset`)
    return token.trim()
  }
  throw new Error('vt agent needs a token: give --token-file FILE or --token-env VAR')
}

export function toAgentOptions(opts: AgentCliOptions): AgentOptions {
  const { host, port } = parseListen(opts.listen)
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined))
    throw new Error('--tls-cert and --tls-key go together')
  if (opts.tlsCa && !opts.tlsCert) throw new Error('--tls-ca needs --tls-cert and --tls-key')
  const labels: Record<string, string> = {}
  for (const l of opts.label) {
    const i = l.indexOf('=')
    if (i <= 0) throw new Error(`--label "${l}" must be key=value`)
    labels[l.slice(0, i)] = l.slice(i + 1)
  }
  return {
    host,
    port,
    token: readToken(opts),
    tls: opts.tlsCert ? { cert: opts.tlsCert, key: opts.tlsKey as string, ca: opts.tlsCa } : undefined,
    insecure: opts.insecure,
    stateDir: resolve(opts.stateDir ?? defaultStateDir()),
    name: opts.name,
    labels,
    roots: opts.allowRoot.map(r => resolve(r)),
    maxLeaseSeconds: opts.maxLease,
    capacity: { memoryBytes: opts.capacityMemory, cpus: opts.capacityCpus },
    quiet: opts.quiet,
    advertise: opts.advertise,
  }
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
    .option('--capacity-memory <bytes>', 'memory offered to reservations (default: all)', positiveInt)
    .option('--capacity-cpus <n>', 'cpus offered to reservations (default: all cores)', positiveInt)
    .option('--advertise <address>', 'address controllers should use, when not the listen address')
    .option('--quiet', 'log only to <state-dir>/agent.log')
    .addOption(new Option('--exit-with-stdin', 'stop when stdin closes (embedded agents)').hideHelp())
    .action(async (opts: AgentCliOptions) => {
      await (run ?? (await import('./main.ts')).runAgent)(opts)
      // The agent ends the process itself when it stops (signal or closed stdin). Never hand control back to
      // the CLI, which exits once a command's action resolves.
      await new Promise<never>(() => {})
    })
}
