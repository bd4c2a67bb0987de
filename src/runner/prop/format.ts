// How a property's outcome reads: the counterexample (fast-check commands as a numbered list of operations,
// anything else through fc.stringify) and the command line that replays it.
import path from 'node:path'
import fc from 'fast-check'

interface RanCommand {
  hasRan: boolean
  toString(): string
}

/** fc.commands() values: iterables of wrappers that remember whether they ran. */
function commandsOf(value: unknown): RanCommand[] | undefined {
  if (!value || typeof value !== 'object' || !Array.isArray((value as { commands?: unknown }).commands)) return
  const list = (value as { commands: unknown[] }).commands
  if (!list.every(c => c && typeof c === 'object' && 'hasRan' in c && 'cmd' in c)) return
  return list as RanCommand[]
}

/** One generated value, indented under its name; commands as "1. migrate → host-2 ...". */
export function formatValue(value: unknown, indent = '    '): string {
  const commands = commandsOf(value)
  if (!commands) return indent + fc.stringify(value).replace(/\n/g, `\n${indent}`)
  const ran = commands.filter(c => c.hasRan)
  const shown = ran.length ? ran : commands
  const lines = shown.map((c, i) => `${indent}${i + 1}. ${String(c)}`)
  if (!ran.length) lines.unshift(`${indent}(no operation ran; generated:)`)
  return lines.join('\n')
}

/** The counterexample as it will be printed: one entry per arbitrary. */
export function formatCounterexample(values: unknown, named: boolean): string {
  const entries: [string, unknown][] = named
    ? Object.entries(values as Record<string, unknown>)
    : (values as unknown[]).map((v, i) => [`[${i}]`, v])
  return entries.map(([name, v]) => `  ${name}:\n${formatValue(v)}`).join('\n')
}

export interface ReplayTarget {
  file: string
  line: number
  project?: string
  configFile?: string
  seed: number
  path?: string
}

/** `npx vt test examples/stress.vt.ts:20 --seed 42 --path 3:0:1` (relative to where vt runs). */
export function replayCommand(t: ReplayTarget, cwd = process.cwd()): string {
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`)
  const args = ['npx', 'vt', 'test', quote(`${path.relative(cwd, t.file) || t.file}:${t.line}`)]
  if (t.configFile && path.resolve(cwd, 'vt.config.ts') !== t.configFile)
    args.push('-c', quote(path.relative(cwd, t.configFile) || t.configFile))
  if (t.project) args.push('--project', quote(t.project))
  args.push('--seed', String(t.seed))
  if (t.path) args.push('--path', t.path)
  return args.join(' ')
}
