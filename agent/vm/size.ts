// Memory sizes as the spec writes them ('256M', '1G', 512) → MiB.
const UNITS: Record<string, number> = { '': 1, K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 }

export function toMiB(size: string | number | undefined, fallback: number): number {
  if (size === undefined) return fallback
  if (typeof size === 'number') return size
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(size.trim())
  if (!m) throw new Error(`invalid size ${JSON.stringify(size)}: use e.g. "256M" or "1G"`)
  const mib = Math.round(Number(m[1]) * UNITS[m[2].toUpperCase()])
  if (mib < 1) throw new Error(`size ${JSON.stringify(size)} is less than 1 MiB`)
  return mib
}

export function formatMiB(mib: number): string {
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${mib} MiB`
}
