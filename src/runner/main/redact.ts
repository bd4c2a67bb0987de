// Worker messages with known secrets taken out, before any reporter sees them: text, base64 output and
// attachment bodies, and attachment files (vt's own copies in the output folder, rewritten in place).
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { FullConfig, FullProject, RedactSource } from '../../config/types.ts'
import { hasSecrets, REDACTED, redactBuffer, redactDeep, redactFile, registerSecret } from '../../util/secrets.ts'
import type { WorkerToMain } from '../ipc.ts'

export function redactMessage(msg: WorkerToMain): WorkerToMain {
  if (!hasSecrets()) return msg
  if ((msg.type === 'stdout' || msg.type === 'stderr') && msg.binary) {
    msg.text = redactBuffer(Buffer.from(msg.text, 'base64')).toString('base64')
    return msg
  }
  if (msg.type === 'attach') {
    if (msg.body !== undefined) msg.body = redactBuffer(Buffer.from(msg.body, 'base64')).toString('base64')
    if (msg.path) redactFile(msg.path)
    msg.name = redactDeep(msg.name)
    return msg
  }
  return redactDeep(msg)
}

type TokenSource = { value: string } | { env: string } | { file: string }

function redactToken<T extends TokenSource | undefined>(token: T): T {
  return (token && 'value' in token ? { value: REDACTED } : token) as T
}

/**
 * The config as reporters get it: `token: { value }` replaced (cluster and per-host), everything else shared
 * with the runner's own config object.
 */
export function configForReporters(config: FullConfig): FullConfig {
  const project = (p: FullProject): FullProject => {
    const c = p.cluster
    if (!c) return p
    const hosts = Array.isArray(c.hosts)
      ? c.hosts.map(h => (h.token ? { ...h, token: redactToken(h.token) } : h))
      : c.hosts
    return { ...p, cluster: { ...c, hosts, ...(c.token ? { token: redactToken(c.token) } : {}) } }
  }
  return { ...config, projects: config.projects.map(project) }
}

/**
 * Registers what the config says is secret: its `redact` list and every cluster token it can read now (the
 * embedded cluster registers the tokens it makes, and remote tokens again when it resolves them). An unset
 * variable or an unreadable file holds no secret that could leak. `redact` files are relative to the config.
 */
export function registerConfigSecrets(config: FullConfig): void {
  const base = config.configFile ? path.dirname(config.configFile) : config.rootDir
  const read = (source: RedactSource): string | undefined => {
    if (typeof source === 'string') return source
    if ('env' in source) return process.env[source.env]?.trim() || undefined
    try {
      return readFileSync(path.resolve(base, source.file), 'utf8').trim()
    } catch {
      return undefined
    }
  }
  for (const source of config.redact ?? []) {
    const value = read(source)
    if (value !== undefined) registerSecret(value)
  }
  for (const p of config.projects) {
    const c = p.cluster
    if (!c) continue
    const sources = [c.token, ...(Array.isArray(c.hosts) ? c.hosts.map(h => h.token) : [])]
    for (const t of sources) {
      if (!t) continue
      const value = 'value' in t ? t.value : read(t)
      if (value !== undefined) registerSecret(value)
    }
  }
}
