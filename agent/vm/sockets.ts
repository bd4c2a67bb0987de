// Where a VM's unix sockets live. A socket path must fit in sun_path (108 bytes), so it may not depend on the
// VM's name (up to 64 characters) or on the agent's state dir (any length): each VM gets a short private
// directory of its own under a short runtime root, e.g. /run/vt/vm-Ab12Cd/qmp.sock.
import { accessSync, constants, mkdirSync, mkdtempSync } from 'node:fs'
import { join } from 'node:path'

/** The longest socket path the kernel accepts (sun_path is 108 bytes including the final NUL). */
export const MAX_SOCKET_PATH = 107

function writableDir(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    accessSync(dir, constants.W_OK | constants.X_OK)
    return true
  } catch {
    return false
  }
}

let root: string | undefined

/** /run/vt for root, else /tmp/vt-<uid>: both short, whatever TMPDIR or the state dir say. */
export function socketRoot(): string {
  if (root) return root
  const uid = process.getuid?.() ?? 0
  const candidates = uid === 0 ? ['/run/vt', `/tmp/vt-${uid}`] : [`/tmp/vt-${uid}`]
  root = candidates.find(writableDir)
  if (!root) throw new Error(`no writable directory for VM sockets (tried ${candidates.join(', ')})`)
  return root
}

/** A new private directory (mode 700) for one VM's sockets; the caller removes it with the VM. */
export function makeSocketDir(): string {
  return mkdtempSync(join(socketRoot(), 'vm-'))
}
