// The `vt agent` options: from the command line's values to the agent's AgentOptions (token read, paths
// resolved, flags checked together).
import { readFileSync, statSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { InvalidArgumentError } from 'commander'
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
  confined?: boolean
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
    confined: opts.confined,
  }
}
