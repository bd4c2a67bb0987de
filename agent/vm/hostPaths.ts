// Host paths that reach QEMU outside the VM spec's checked fields: raw `extraArgs`, the `incoming` migration URI
// and QMP commands. Where a host path can be recognized it must lie in the roots (the same list as disks and
// kernels). What cannot be checked (a shell in an `exec:` URI, HMP command lines, QEMU options not listed here)
// is refused by a confined agent (`vt agent --confined`) and listed as a bypass in docs/security.md otherwise.
import { realpathSync } from 'node:fs'
import { basename, dirname, isAbsolute, join } from 'node:path'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'

export interface HostPathPolicy {
  /** Real paths of the directories QEMU may be pointed at. */
  roots: string[]
  /** No raw QEMU arguments, no `exec:` URIs, no HMP. */
  confined: boolean
}

function refuse(message: string, code = 'OUTSIDE_ROOTS'): VtError {
  return new VtError(code === 'CONFINED' ? ErrorNames.badRequest : ErrorNames.outsideRoots, message, { code })
}

/** realpath of the deepest existing ancestor, joined with what does not exist yet. */
function realish(path: string): string {
  const missing: string[] = []
  let current = path
  for (;;) {
    try {
      return join(realpathSync(current), ...missing.reverse())
    } catch {
      const parent = dirname(current)
      if (parent === current) return path
      missing.push(basename(current))
      current = parent
    }
  }
}

/** A root's real path (the directory may not exist yet). */
export function realRoot(root: string): string {
  return realish(root)
}

/** Refuses a host path outside the roots (no roots: no restriction); `what` names where it came from. */
export function checkHostPath(path: string, what: string, policy: HostPathPolicy): void {
  if (policy.roots.length === 0) return
  if (!isAbsolute(path)) throw refuse(`${what}: host path "${path}" must be absolute`, 'BAD_REQUEST')
  const real = realish(path)
  if (!policy.roots.some(r => real === r || real.startsWith(r.endsWith('/') ? r : `${r}/`))) {
    throw refuse(
      `${what}: host path ${path}${real !== path ? ` (resolves to ${real})` : ''} is outside the agent's allowed roots (${policy.roots.join(', ')})`,
    )
  }
}

/** A QEMU filename: a local path (optionally `file:`-prefixed) or a protocol URI such as `nbd:` (not a path). */
function localPath(value: string): string | undefined {
  if (value.startsWith('file:')) return value.slice('file:'.length)
  if (value.startsWith('json:')) return undefined // handled by the caller
  if (/^[a-z][a-z0-9+.-]*:/i.test(value)) return undefined
  return value
}

/** Migration URIs: `exec:` runs a shell on the host; `file:` names a host path. */
export function checkMigrationUri(uri: string, what: string, policy: HostPathPolicy): void {
  if (uri.startsWith('exec:')) {
    if (policy.confined)
      throw refuse(`${what}: "exec:" migration URIs run host commands; this agent is confined`, 'CONFINED')
    return
  }
  if (uri.startsWith('file:')) checkHostPath(uri.slice('file:'.length).split(',')[0], what, policy)
}

// QEMU options whose value is a host path, and keys of option lists and QMP arguments that hold one.
const PATH_OPTIONS = new Set([
  '-kernel',
  '-initrd',
  '-bios',
  '-dtb',
  '-hda',
  '-hdb',
  '-hdc',
  '-hdd',
  '-cdrom',
  '-fda',
  '-fdb',
  '-mtdblock',
  '-sd',
  '-pflash',
  '-readconfig',
  '-mem-path',
  '-pidfile',
  '-D',
  '-option-rom',
])
const LIST_OPTIONS = new Set([
  '-drive',
  '-blockdev',
  '-chardev',
  '-object',
  '-netdev',
  '-fsdev',
  '-virtfs',
  '-plugin',
  '-acpitable',
  '-smbios',
  '-fw_cfg',
  '-device',
])
const PATH_KEYS = new Set(['file', 'filename', 'mem-path', 'script', 'downscript', 'logfile', 'snapshot-file'])

/** `key=value,key=value` with QEMU's `,,` escape. */
function optionList(value: string): [string, string][] {
  const out: [string, string][] = []
  for (const part of value.replace(/,,/g, '\u0000').split(',')) {
    const i = part.indexOf('=')
    if (i > 0) out.push([part.slice(0, i), part.slice(i + 1).replace(/\u0000/g, ',')])
  }
  return out
}

function checkValue(key: string, value: string, what: string, policy: HostPathPolicy): void {
  if ((key === 'script' || key === 'downscript') && value === 'no') return
  if (value.startsWith('json:')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(value.slice('json:'.length))
    } catch {
      throw refuse(`${what}: ${key}=${value.slice(0, 60)} is not valid json:`, 'BAD_REQUEST')
    }
    checkQmpArgs(parsed, what, policy)
    return
  }
  const path = localPath(value)
  // `file=` of -blockdev names another node when it is not a path.
  if (path !== undefined && (isAbsolute(path) || key !== 'file')) checkHostPath(path, what, policy)
}

/** Raw QEMU arguments: refused when confined; else the path options above are checked. */
export function checkExtraArgs(args: string[], what: string, policy: HostPathPolicy): void {
  if (args.length === 0) return
  if (policy.confined) {
    throw refuse(`${what}: extraArgs (raw QEMU arguments) are refused: this agent is confined`, 'CONFINED')
  }
  for (let i = 0; i < args.length; i++) {
    const opt = args[i].replace(/^--/, '-')
    const value = args[i + 1]
    if (value === undefined) break
    const where = `${what}: extraArgs ${opt} ${value.slice(0, 80)}`
    if (opt === '-incoming') checkMigrationUri(value, where, policy)
    else if (PATH_OPTIONS.has(opt)) checkHostPath(localPath(value) ?? value, where, policy)
    else if (LIST_OPTIONS.has(opt)) {
      if (value.startsWith('{')) checkValue('file', `json:${value}`, where, policy)
      else
        for (const [k, v] of optionList(value)) {
          // -drive's file= is always a path (elsewhere file= may name another block node).
          if (PATH_KEYS.has(k) || k === 'path')
            checkValue(opt === '-drive' && k === 'file' ? 'filename' : k, v, where, policy)
        }
    } else continue
    i++
  }
}

/** Walks QMP arguments for host paths (file names, unix socket paths, `file:` targets). */
function checkQmpArgs(value: unknown, what: string, policy: HostPathPolicy, depth = 0): void {
  if (depth > 16 || value === null || typeof value !== 'object') return
  const obj = value as Record<string, unknown>
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'string') {
      if (PATH_KEYS.has(k)) checkValue(k, v, `${what} (${k})`, policy)
      else if (k === 'path' && obj.type === 'unix') checkHostPath(v, `${what} (unix socket)`, policy)
      else if (k === 'uri') checkMigrationUri(v, `${what} (uri)`, policy)
    } else checkQmpArgs(v, what, policy, depth + 1)
  }
}

/** Commands whose arguments carry a host path under a key used for other things elsewhere. */
const TARGET_PATH = new Set(['drive-mirror', 'drive-backup'])

/** A QMP command from a controller: HMP refused when confined; host paths in its arguments checked. */
export function checkQmpCommand(
  command: string,
  args: Record<string, unknown> | undefined,
  what: string,
  policy: HostPathPolicy,
): void {
  const where = `${what}: QMP ${command}`
  if (command === 'human-monitor-command' && policy.confined) {
    throw refuse(`${where}: HMP command lines are refused: this agent is confined`, 'CONFINED')
  }
  if (!args) return
  if (command === 'dump-guest-memory' && typeof args.protocol === 'string' && args.protocol.startsWith('file:')) {
    checkHostPath(args.protocol.slice('file:'.length), where, policy)
  }
  if (TARGET_PATH.has(command) && typeof args.target === 'string') {
    const path = localPath(args.target)
    if (path !== undefined) checkHostPath(path, where, policy)
  }
  checkQmpArgs(args, where, policy)
}
