// The Debian archive apt already uses, read from /etc/apt/sources.list and sources.list.d (one-line .list
// entries and deb822 .sources paragraphs, the files apt itself reads), reduced to the entries of one suite
// family (e.g. bookworm, bookworm-updates, bookworm-security) as one-line `deb` entries for mmdebstrap.
// Other repositories (vendor archives, nodesource...) are left out: the guest is built from Debian only.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface AptSource {
  uri: string
  suite: string
  components: string[]
  signedBy?: string
  /** Where it was read, for errors and the manifest. */
  file: string
}

/** The one-line and deb822 entries of one file's text. */
export function parseSources(text: string, file: string): AptSource[] {
  const out: AptSource[] = []
  if (file.endsWith('.sources')) {
    for (const para of text.split(/\n\s*\n/)) {
      const fields = new Map<string, string>()
      let last = ''
      for (const raw of para.split('\n')) {
        if (raw.startsWith('#')) continue
        if (/^\s/.test(raw) && last) {
          fields.set(last, `${fields.get(last)} ${raw.trim()}`)
          continue
        }
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw)
        if (!m) continue
        last = m[1].toLowerCase()
        fields.set(last, m[2].trim())
      }
      if (fields.get('enabled')?.toLowerCase() === 'no') continue
      if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue
      const signedBy = fields.get('signed-by')
      for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean))
        for (const suite of (fields.get('suites') ?? '').split(/\s+/).filter(Boolean))
          out.push({
            uri,
            suite,
            components: (fields.get('components') ?? 'main').split(/\s+/).filter(Boolean),
            ...(signedBy?.startsWith('/') ? { signedBy } : {}),
            file,
          })
    }
    return out
  }
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim()
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line)
    if (!m) continue
    const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? '')?.[1]
    out.push({
      uri: m[2],
      suite: m[3],
      components: m[4].split(/\s+/).filter(Boolean),
      ...(signedBy ? { signedBy } : {}),
      file,
    })
  }
  return out
}

/** Every entry apt reads on this machine. */
export function aptSources(etc = '/etc/apt'): AptSource[] {
  const files: string[] = []
  if (existsSync(join(etc, 'sources.list'))) files.push(join(etc, 'sources.list'))
  const d = join(etc, 'sources.list.d')
  if (existsSync(d))
    for (const f of readdirSync(d).sort()) if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join(d, f))
  return files.flatMap(f => parseSources(readFileSync(f, 'utf8'), f))
}

/** The entries of suite family `suite` (the suite itself and `suite-*`), as `deb` lines for mmdebstrap. */
export function debianLines(sources: AptSource[], suite: string): string[] {
  const lines = sources
    .filter(s => s.suite === suite || s.suite.startsWith(`${suite}-`))
    .map(s => `deb ${s.signedBy ? `[signed-by=${s.signedBy}] ` : ''}${s.uri} ${s.suite} ${s.components.join(' ')}`)
  return [...new Set(lines)]
}
