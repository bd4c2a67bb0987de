// A minimal NFSv3 client (RFC 1813) for the NFS pool's metadata: find the server's ports through its portmapper,
// mount the export, then look up, list, remove and measure in its top directory. Data never goes through here:
// QEMU and qemu-img read and write volumes over NFS themselves.
import { RpcConnection, type XdrReader, XdrWriter } from './oncRpc.ts'

const PORTMAP = 100000
const MOUNT = 100005
const NFS = 100003

const NFS_ERRORS: Record<number, string> = {
  1: 'not owner',
  2: 'no such file or directory',
  5: 'I/O error',
  13: 'permission denied',
  17: 'file exists',
  20: 'not a directory',
  21: 'is a directory',
  28: 'no space left',
  30: 'read-only file system',
  63: 'name too long',
  66: 'directory not empty',
  70: 'stale file handle',
  10008: 'server busy (jukebox)',
}

export class NfsError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message)
  }
}

export interface NfsTarget {
  server: string
  /** The export's path on the server, e.g. /srv/vt. */
  export: string
  /** Per call; default 10 s. */
  timeoutMs?: number
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'other'

export interface NfsEntry {
  name: string
  type: EntryType
  size: number
  /** Bytes allocated on the server. */
  used: number
}

interface Attr {
  type: EntryType
  size: number
  used: number
}

const TYPES: Record<number, EntryType> = { 1: 'file', 2: 'dir', 5: 'symlink' }

function readAttr(r: XdrReader): Attr {
  const type = TYPES[r.u32()] ?? 'other'
  r.skip(16) // mode, nlink, uid, gid
  const size = Number(r.u64())
  const used = Number(r.u64())
  r.skip(8 + 8 + 8 + 24) // rdev, fsid, fileid, atime, mtime, ctime
  return { type, size, used }
}

function readPostOpAttr(r: XdrReader): Attr | undefined {
  return r.bool() ? readAttr(r) : undefined
}

export class NfsClient {
  private constructor(
    private readonly nfs: RpcConnection,
    private readonly root: Buffer,
    private readonly where: string,
  ) {}

  /** Mounts the export (MOUNT v3 through the server's portmapper) and connects to its NFSv3 service. */
  static async mount(t: NfsTarget): Promise<NfsClient> {
    const timeout = t.timeoutMs ?? 10_000
    const where = `NFS server ${t.server}, export ${t.export}`
    const portOf = async (prog: number, vers: number, name: string) => {
      const pm = await RpcConnection.open(t.server, 111, `the portmapper of ${where}`, timeout)
      try {
        const r = await pm.call(PORTMAP, 2, 3, new XdrWriter().u32(prog).u32(vers).u32(6).u32(0).bytes())
        const port = r.u32()
        if (port === 0)
          throw new NfsError(`${where}: no ${name} service registered with its portmapper (is the NFS server running?)`)
        return port
      } finally {
        pm.close()
      }
    }
    const mountd = await RpcConnection.open(t.server, await portOf(MOUNT, 3, 'MOUNT v3'), `mountd of ${where}`, timeout)
    let root: Buffer
    try {
      const r = await mountd.call(MOUNT, 3, 1, new XdrWriter().string(t.export).bytes())
      const status = r.u32()
      if (status !== 0) {
        throw new NfsError(`${where}: mount refused: ${NFS_ERRORS[status] ?? `status ${status}`}`, status)
      }
      root = Buffer.from(r.opaque())
    } finally {
      mountd.close()
    }
    const nfs = await RpcConnection.open(t.server, await portOf(NFS, 3, 'NFS v3'), where, timeout)
    return new NfsClient(nfs, root, where)
  }

  private check(r: XdrReader, what: string): void {
    const status = r.u32()
    if (status !== 0) {
      throw new NfsError(`${this.where}: ${what}: ${NFS_ERRORS[status] ?? `NFS status ${status}`}`, status)
    }
  }

  /** The entry `name` in the export's top directory, or undefined when there is none. */
  async lookup(name: string): Promise<Attr | undefined> {
    const r = await this.nfs.call(NFS, 3, 3, new XdrWriter().opaque(this.root).string(name).bytes())
    const status = r.u32()
    if (status === 2) return undefined
    if (status !== 0) throw new NfsError(`${this.where}: lookup ${name}: ${NFS_ERRORS[status] ?? status}`, status)
    r.opaque() // its file handle
    const attr = readPostOpAttr(r)
    if (!attr) throw new NfsError(`${this.where}: lookup ${name}: the server sent no attributes`)
    return attr
  }

  /** Removes file `name` from the export's top directory; false when it did not exist. */
  async remove(name: string): Promise<boolean> {
    const r = await this.nfs.call(NFS, 3, 12, new XdrWriter().opaque(this.root).string(name).bytes())
    const status = r.u32()
    if (status === 2) return false
    if (status !== 0) throw new NfsError(`${this.where}: remove ${name}: ${NFS_ERRORS[status] ?? status}`, status)
    return true
  }

  /** Every entry of the export's top directory (READDIRPLUS, page by page). */
  async list(): Promise<NfsEntry[]> {
    const out: NfsEntry[] = []
    let cookie = 0n
    let verifier = Buffer.alloc(8)
    for (let page = 0; page < 10_000; page++) {
      const args = new XdrWriter().opaque(this.root).u64(cookie).fixed(verifier).u32(16_384).u32(65_536).bytes()
      const r = await this.nfs.call(NFS, 3, 17, args)
      this.check(r, 'list')
      readPostOpAttr(r)
      verifier = Buffer.from(r.fixed(8))
      while (r.bool()) {
        r.u64() // fileid
        const name = r.string()
        cookie = r.u64()
        const attr = readPostOpAttr(r)
        if (r.bool()) r.opaque() // its file handle
        if (name === '.' || name === '..') continue
        out.push({ name, type: attr?.type ?? 'other', size: attr?.size ?? 0, used: attr?.used ?? 0 })
      }
      if (r.bool()) return out
    }
    throw new NfsError(`${this.where}: list: the directory never ended`)
  }

  /** The export's file system: total, free and (for us) available bytes. */
  async fsstat(): Promise<{ totalBytes: number; freeBytes: number; availableBytes: number }> {
    const r = await this.nfs.call(NFS, 3, 18, new XdrWriter().opaque(this.root).bytes())
    this.check(r, 'fsstat')
    readPostOpAttr(r)
    const totalBytes = Number(r.u64())
    const freeBytes = Number(r.u64())
    const availableBytes = Number(r.u64())
    return { totalBytes, freeBytes, availableBytes }
  }

  close(): void {
    this.nfs.close()
  }
}

/** Mounts, runs `fn`, disconnects. */
export async function withNfs<T>(t: NfsTarget, fn: (c: NfsClient) => Promise<T>): Promise<T> {
  const c = await NfsClient.mount(t)
  try {
    return await fn(c)
  } finally {
    c.close()
  }
}
