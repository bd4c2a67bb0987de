// Key paths into the user's config and the line of a key in its source: what every config error names. Free of
// the schema (and zod), so a worker can report config errors without loading either.

export type KeyPath = (string | number)[]

/** `['projects', 1, 'use']` → `projects[1].use`; the root is `(config)`. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (typeof seg === 'string' && /^[A-Za-z_$][\w$]*$/.test(seg)) out += out ? `.${seg}` : seg
    else out += `[${JSON.stringify(String(seg))}]`
  }
  return out || '(config)'
}

/**
 * Finds the line of a key path in the config's source text, walking the string keys in order (each one
 * searched after the previous), so `projects[1].retries` lands on the `retries:` inside `projects`. Best effort:
 * returns undefined when a key cannot be found (computed keys, spread objects).
 */
export function findKeyLine(source: string, path: KeyPath): number | undefined {
  let pos = 0
  let found = -1
  for (const seg of path) {
    if (typeof seg !== 'string') continue
    const esc = seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    const re = new RegExp(`(?:^|[\\s{,])(?:${esc}|'${esc}'|"${esc}")\\s*:`, 'g')
    re.lastIndex = pos
    const m = re.exec(source)
    if (!m) return found >= 0 ? lineOf(source, found) : undefined
    found = m.index + m[0].indexOf(seg.charAt(0), /^[\s{,]/.test(m[0]) ? 1 : 0)
    pos = m.index + m[0].length
  }
  return found >= 0 ? lineOf(source, found) : undefined
}

function lineOf(source: string, index: number): number {
  let line = 1
  for (let i = 0; i < index; i++) if (source.charCodeAt(i) === 10) line++
  return line
}
