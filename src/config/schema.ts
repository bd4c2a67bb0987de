// The zod schema of `vt.config.ts` (the same shape as Config in ./types.ts) and the rendering of its issues into
// messages that name the key path, e.g. `projects[1].retries: expected a number, got a string`.
import { z } from 'zod'
import { clusterConfigChecked, clusterConfigSchema } from './cluster.ts'
import { formatKeyPath, type KeyPath } from './keyPath.ts'
import { traceModes } from './trace.ts'

export { findKeyLine, formatKeyPath, type KeyPath } from './keyPath.ts'

const regexp = z.instanceof(RegExp)
const pattern = z.union([z.string(), regexp])
const patterns = z.union([pattern, z.array(pattern)])
const grep = z.union([regexp, z.array(regexp)])
const nonNegInt = z.number().int().min(0)
// Node fires a timer longer than 2^31-1 ms at once: a longer timeout would fail every test immediately.
const MAX_TIMER_MS = 2_147_483_647
const timeoutMs = z
  .number()
  .min(0, 'must be between 0 (no timeout) and 2147483647 ms (about 24.8 days)')
  .max(MAX_TIMER_MS, 'must be between 0 (no timeout) and 2147483647 ms (about 24.8 days)')
const reporterEntry = z.union([
  z.tuple([z.string().min(1)]),
  z.tuple([z.string().min(1), z.record(z.string(), z.unknown()).optional()]),
])

// Keys a project may set; the top level accepts the same ones (except name and dependencies) as defaults.
const projectShape = {
  // Open to any fixture option; the built-in ones with a fixed set of values are checked here.
  use: z.looseObject({ trace: z.enum(traceModes).optional() }).optional(),
  testDir: z.string().min(1).optional(),
  testMatch: patterns.optional(),
  testIgnore: patterns.optional(),
  outputDir: z.string().min(1).optional(),
  retries: nonNegInt.optional(),
  repeatEach: z.number().int().min(1).optional(),
  timeout: timeoutMs.optional(),
  fullyParallel: z.boolean().optional(),
  grep: grep.optional(),
  grepInvert: grep.optional(),
  cluster: clusterConfigChecked.optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  seed: z.number().int().optional(),
}

export const projectConfigSchema = z.strictObject({
  ...projectShape,
  name: z.string().optional(),
  dependencies: z.array(z.string()).optional(),
})

export const configSchema = z.strictObject({
  ...projectShape,
  projects: z.array(projectConfigSchema).optional(),
  reporter: z.union([z.string().min(1), z.array(reporterEntry)]).optional(),
  workers: z
    .union([z.number().int().min(1), z.string().regex(/^\d+%?$/, 'must be a number or a percentage such as "50%"')])
    .optional(),
  globalTimeout: timeoutMs.optional(),
  maxFailures: nonNegInt.optional(),
  forbidOnly: z.boolean().optional(),
  failOnFlakyTests: z.boolean().optional(),
  reuseWorkerAfterFailure: z.boolean().optional(),
  globalSetup: z.string().min(1).optional(),
  globalTeardown: z.string().min(1).optional(),
  expect: z.strictObject({ timeout: timeoutMs.optional() }).optional(),
  quiet: z.boolean().optional(),
  shard: z
    .strictObject({ current: z.number().int().min(1), total: z.number().int().min(1) })
    .refine(s => s.current <= s.total, 'current must be between 1 and total')
    .nullable()
    .optional(),
  passWithNoTests: z.boolean().optional(),
  preserveOutput: z.enum(['always', 'never', 'failures-only']).optional(),
  redact: z
    .array(
      z.union([
        z.string().min(4, 'a secret must have at least 4 characters'),
        z.strictObject({ env: z.string().min(1) }),
        z.strictObject({ file: z.string().min(1) }),
      ]),
    )
    .optional(),
})

export interface ConfigIssue {
  path: KeyPath
  message: string
}

function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (value instanceof RegExp) return 'a RegExp'
  const t = typeof value
  if (t === 'object') return 'an object'
  if (t === 'string') return `a string (${JSON.stringify(value)})`
  if (t === 'number' || t === 'boolean') return `${t} ${String(value)}`
  return t === 'undefined' ? 'undefined' : `a ${t}`
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: any = root
  for (const seg of path) {
    if (v == null || typeof v !== 'object') return undefined
    v = v[seg as any]
  }
  return v
}

const article = (expected: string) => (/^[aeiou]/i.test(expected) ? `an ${expected}` : `a ${expected}`)

function expectedName(expected: string): string {
  if (expected === 'tuple') return 'an array'
  if (expected === 'RegExp' || expected === 'array' || expected === 'object') return article(expected)
  if (expected === 'string' || expected === 'number' || expected === 'boolean') return article(expected)
  return expected
}

type RawIssue = z.core.$ZodIssue

/** Flattens zod issues into one message per key path, with the offending value described. */
export function describeIssues(issues: readonly RawIssue[], input: unknown, base: KeyPath = []): ConfigIssue[] {
  const out: ConfigIssue[] = []
  for (const issue of issues) {
    const path = [...base, ...(issue.path as (string | number)[])]
    switch (issue.code) {
      case 'unrecognized_keys': {
        const parentValue = valueAt(input, path)
        for (const key of issue.keys) {
          out.push({ path: [...path, key], message: `unknown key${suggestKeys(parentValue, key, path)}` })
        }
        break
      }
      case 'invalid_type': {
        const value = valueAt(input, path)
        const expected = value === undefined ? 'is required' : `expected ${expectedName(issue.expected)}`
        out.push({
          path,
          message: value === undefined ? `${expected}` : `${expected}, got ${describeValue(value)}`,
        })
        break
      }
      case 'invalid_key': {
        // A record key that its key schema refused: that schema's own words, on the key's path.
        const inner = (issue.issues as RawIssue[] | undefined)?.[0]
        out.push({
          path,
          message: inner ? `${lowerFirst(inner.message)}, got ${JSON.stringify(path[path.length - 1])}` : issue.message,
        })
        break
      }
      case 'invalid_union': {
        // A branch whose issues are all below this path matched the shape: report its inner issues.
        const branches = issue.errors as RawIssue[][]
        const deep = branches.filter(b => b.length > 0 && b.every(i => i.path.length > 0))
        const structural = deep.find(b => !b.some(i => i.code === 'invalid_type' && i.path.length === 1))
        if (deep.length > 0) {
          out.push(...describeIssues(structural ?? deep[0], input, path))
          break
        }
        const expected = new Set<string>()
        const collect = (list: readonly RawIssue[]) => {
          for (const i of list) {
            if (i.path.length > 0) continue
            if (i.code === 'invalid_type') expected.add(expectedName(i.expected))
            else if (i.code === 'invalid_union') for (const b of i.errors as RawIssue[][]) collect(b)
            else if (i.code === 'too_small' || i.code === 'too_big' || i.code === 'invalid_format') {
              out.push(...describeIssues([i], input, path))
            } else if (i.code === 'invalid_value') expected.add(i.values.map(v => JSON.stringify(v)).join(' or '))
          }
        }
        for (const b of branches) collect(b)
        if (expected.size > 0) {
          out.push({
            path,
            message: `expected ${[...expected].join(' or ')}, got ${describeValue(valueAt(input, path))}`,
          })
        } else if (!out.some(o => formatKeyPath(o.path) === formatKeyPath(path))) {
          out.push({ path, message: issue.message })
        }
        break
      }
      case 'invalid_value':
        out.push({
          path,
          message: `expected one of ${issue.values.map(v => JSON.stringify(v)).join(', ')}, got ${describeValue(valueAt(input, path))}`,
        })
        break
      case 'too_small':
      case 'too_big':
      case 'invalid_format':
      case 'custom':
      case 'not_multiple_of':
        out.push({ path, message: `${lowerFirst(issue.message)}, got ${describeValue(valueAt(input, path))}` })
        break
      default:
        out.push({ path, message: lowerFirst(issue.message) })
    }
  }
  // Unions can report the same problem through several branches.
  const seen = new Set<string>()
  return out.filter(i => {
    const k = formatKeyPath(i.path) + '\0' + i.message
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1)
}

const knownKeys = (path: KeyPath): string[] | undefined => {
  const strings = path.filter(p => typeof p === 'string')
  if (path.length === 0) return Object.keys(configSchema.shape)
  if (strings.length === 1 && strings[0] === 'projects' && path.length === 2)
    return Object.keys(projectConfigSchema.shape)
  if (path[path.length - 1] === 'expect') return ['timeout']
  if (path[path.length - 1] === 'cluster') return Object.keys(clusterConfigSchema.shape)
  return undefined
}

function suggestKeys(_parent: unknown, key: string, path: KeyPath): string {
  const known = knownKeys(path)
  if (!known) return ''
  const close = known.find(k => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2)
  return `${close ? ` (did you mean "${close}"?)` : ''}; valid keys: ${known.join(', ')}`
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]
    dp[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return dp[b.length]
}
