// Checking a cache entry before use. Its manifest records each file's size and sha256; an entry is used only
// when the manifest parses and every file matches. Sizes are checked on every use, hashes once per process and
// file version (path, size, mtime, inode), so a boot pays for hashing ~17 MB once per agent, not per VM.
import { createHash } from 'node:crypto'
import { createReadStream, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

export interface FileDigest {
  size: number
  sha256: string
}

export type Digests = Record<string, FileDigest>

const memo = new Map<string, string>()

function sha256Of(path: string, st: { size: number; mtimeMs: number; ino: number }): string {
  const key = `${path}:${st.size}:${st.mtimeMs}:${st.ino}`
  let h = memo.get(key)
  if (!h) {
    h = createHash('sha256').update(readFileSync(path)).digest('hex')
    memo.set(key, h)
  }
  return h
}

/**
 * Hashes the named files of `dir` by streaming them, into the same memo `checkEntry` and `digestFiles` use:
 * for large files (the debian image's disk) a synchronous hash would stall the agent's event loop for seconds.
 */
export async function prehash(dir: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const path = join(dir, name)
    let st: ReturnType<typeof statSync>
    try {
      st = statSync(path)
    } catch {
      continue // checkEntry names what is missing
    }
    const key = `${path}:${st.size}:${st.mtimeMs}:${st.ino}`
    if (memo.has(key)) continue
    const h = createHash('sha256')
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer)
    memo.set(key, h.digest('hex'))
  }
}

/** Size and sha256 of each named file of `dir`, for the manifest. */
export function digestFiles(dir: string, names: readonly string[]): Digests {
  const out: Digests = {}
  for (const name of names) {
    const path = join(dir, name)
    const st = statSync(path)
    out[name] = { size: st.size, sha256: sha256Of(path, st) }
  }
  return out
}

export type EntryCheck = { ok: true; manifest: Record<string, unknown> } | { ok: false; problem: string }

/** Whether the entry in `dir` is whole: manifest readable and every file of `names` as it records. */
export function checkEntry(dir: string, names: readonly string[]): EntryCheck {
  const manifestPath = join(dir, 'manifest.json')
  let text: string
  try {
    text = readFileSync(manifestPath, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    return { ok: false, problem: code === 'ENOENT' ? 'manifest.json is missing' : `manifest.json: ${code}` }
  }
  let manifest: Record<string, unknown>
  try {
    manifest = JSON.parse(text)
    if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest)) throw new Error('not an object')
  } catch (e) {
    return { ok: false, problem: `manifest.json is not valid JSON (${(e as Error).message})` }
  }
  const files = manifest.files as Digests | undefined
  if (!files || typeof files !== 'object') {
    return { ok: false, problem: 'manifest.json records no file sizes and hashes (written by an older vt)' }
  }
  for (const name of names) {
    const want = files[name]
    if (!want || typeof want.size !== 'number' || typeof want.sha256 !== 'string') {
      return { ok: false, problem: `manifest.json records no size and hash for ${name}` }
    }
    const path = join(dir, name)
    let st: ReturnType<typeof statSync>
    try {
      st = statSync(path)
    } catch {
      return { ok: false, problem: `${name} is missing` }
    }
    if (st.size !== want.size) {
      const how = st.size < want.size ? 'truncated' : 'grown'
      return { ok: false, problem: `${name} is ${st.size} bytes, the manifest says ${want.size} (${how})` }
    }
    if (sha256Of(path, st) !== want.sha256) {
      return { ok: false, problem: `${name} does not match the sha256 in the manifest (its content changed)` }
    }
  }
  return { ok: true, manifest }
}
