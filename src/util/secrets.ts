// Secrets this process knows (cluster tokens, values the config lists under `redact`) and their removal from
// anything written for people: reporter events, reports, attachments. Redaction happens in the main process,
// where every worker message passes before a reporter sees it.
import fs from 'node:fs'

export const REDACTED = '[redacted]'
/** Shorter values are not redacted: replacing every "ab" would destroy the output and protect nothing. */
export const MIN_SECRET_LENGTH = 4

const secrets = new Map<string, Buffer>()
let sorted: string[] = []

/** Adds a value to redact from now on. Returns false (and keeps nothing) for values too short to be secrets. */
export function registerSecret(value: string): boolean {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) return false
  if (!secrets.has(value)) {
    secrets.set(value, Buffer.from(value))
    // Longest first, so that a secret containing another one is replaced whole.
    sorted = [...secrets.keys()].sort((a, b) => b.length - a.length)
  }
  return true
}

export function hasSecrets(): boolean {
  return secrets.size > 0
}

/** Tests only: forget every secret. */
export function clearSecrets(): void {
  secrets.clear()
  sorted = []
}

export function redactString(text: string): string {
  let out = text
  for (const s of sorted) if (out.includes(s)) out = out.split(s).join(REDACTED)
  return out
}

export function redactBuffer(data: Buffer): Buffer {
  let out = data
  for (const s of sorted) {
    const needle = secrets.get(s)!
    if (out.indexOf(needle) === -1) continue
    const parts: Buffer[] = []
    let from = 0
    for (let at = out.indexOf(needle); at !== -1; at = out.indexOf(needle, from)) {
      parts.push(out.subarray(from, at), Buffer.from(REDACTED))
      from = at + needle.length
    }
    parts.push(out.subarray(from))
    out = Buffer.concat(parts)
  }
  return out
}

/** Redacts every string (and Buffer) inside plain data, in place for objects and arrays; returns the value. */
export function redactDeep<T>(value: T): T {
  if (sorted.length === 0) return value
  const seen = new Set<unknown>()
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactString(v)
    if (Buffer.isBuffer(v)) return redactBuffer(v)
    if (v === null || typeof v !== 'object' || seen.has(v)) return v
    if (v instanceof Date || v instanceof RegExp) return v
    seen.add(v)
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) v[i] = walk(v[i])
    else
      for (const key of Object.keys(v)) (v as Record<string, unknown>)[key] = walk((v as Record<string, unknown>)[key])
    return v
  }
  return walk(value) as T
}

/** Largest file whose content is checked; a bigger one is replaced by a note rather than kept unchecked. */
const MAX_FILE_BYTES = 512 * 1024 ** 2

/**
 * Redacts a file vt owns (an attachment copied into the output folder) in place. Returns what happened, for
 * the caller to say when a file had to be emptied.
 */
export function redactFile(file: string): 'clean' | 'redacted' | 'too-big' | 'unreadable' {
  if (sorted.length === 0) return 'clean'
  let data: Buffer
  try {
    if (fs.statSync(file).size > MAX_FILE_BYTES) {
      fs.writeFileSync(file, `${REDACTED}: this attachment was larger than ${MAX_FILE_BYTES} bytes, too big to check\n`)
      return 'too-big'
    }
    data = fs.readFileSync(file)
  } catch {
    return 'unreadable'
  }
  const out = redactBuffer(data)
  if (out === data) return 'clean'
  fs.writeFileSync(file, out)
  return 'redacted'
}
