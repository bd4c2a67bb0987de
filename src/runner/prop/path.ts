// The replay path of a property run: fast-check's shrink path ("7:1:0"), plus, for each fc.commands() value, the
// commands' own replay path (which commands ran at each shrink: fast-check cannot re-walk a commands shrink
// without it). Written "7:1:0,steps=CBF:F": shell-safe, one token for `vt test --path`.
export const replayPathPattern = /^\d+(:\d+)*(,[\w$]+=[A-Za-z0-9+/:]+)*$/

export const replayPathExample = '7:1:0 (or 7:1:0,steps=CBF:F for fc.commands)'

export interface ReplayPath {
  path: string
  /** Commands' replay paths by arbitrary name (record key, or index for a list of arbitraries). */
  commands: Record<string, string>
}

export function parseReplayPath(text: string): ReplayPath {
  const [path, ...rest] = text.split(',')
  const commands: Record<string, string> = {}
  for (const entry of rest) {
    const at = entry.indexOf('=')
    commands[entry.slice(0, at)] = entry.slice(at + 1)
  }
  return { path, commands }
}

export function formatReplayPath(p: ReplayPath): string {
  return [p.path, ...Object.entries(p.commands).map(([name, rp]) => `${name}=${rp}`)].join(',')
}

interface CommandsArbitraryLike {
  sourceReplayPath: string | null
}

/** fast-check's commands arbitrary keeps the replay path it starts from in `sourceReplayPath`. */
export function isCommandsArbitrary(arb: unknown): arb is CommandsArbitraryLike {
  return !!arb && typeof arb === 'object' && 'sourceReplayPath' in arb && 'oneCommandArb' in arb
}

/** The commands' replay path a counterexample value carries (its metadata), if it is an fc.commands() value. */
export function commandsReplayPath(value: unknown): string | undefined {
  const meta = (value as { metadataForReplay?: () => string } | null)?.metadataForReplay
  if (typeof meta !== 'function') return
  const m = /replayPath="([A-Za-z0-9+/:]*)"/.exec(meta.call(value))
  return m?.[1] || undefined
}
