// A newc ("070701") cpio writer: the format the kernel unpacks as an initramfs. Entries are written in the
// order given; directories must come before their contents. All files are owned by root; mtime is fixed so
// the same inputs give the same bytes (the image cache is content-addressed).

export type CpioEntry =
  | { path: string; type: 'dir'; mode?: number }
  | { path: string; type: 'file'; data: Uint8Array; mode?: number }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'chardev'; major: number; minor: number; mode?: number }

const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const S_IFCHR = 0o020000

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0')
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4
}

export function writeCpio(entries: CpioEntry[]): Buffer {
  const chunks: Buffer[] = []
  let ino = 1
  const seen = new Set<string>()
  const add = (name: string, mode: number, data: Uint8Array, rdev: [number, number] = [0, 0]) => {
    const nameBytes = Buffer.from(`${name}\0`)
    const header =
      '070701' +
      hex8(ino++) +
      hex8(mode) +
      hex8(0) + // uid
      hex8(0) + // gid
      hex8(mode & S_IFDIR ? 2 : 1) + // nlink
      hex8(0) + // mtime
      hex8(data.length) +
      hex8(0) + // dev major
      hex8(0) + // dev minor
      hex8(rdev[0]) +
      hex8(rdev[1]) +
      hex8(nameBytes.length) +
      hex8(0) // check
    const h = Buffer.from(header, 'ascii')
    chunks.push(h, nameBytes, Buffer.alloc(pad4(h.length + nameBytes.length)))
    if (data.length > 0)
      chunks.push(Buffer.from(data.buffer, data.byteOffset, data.length), Buffer.alloc(pad4(data.length)))
  }
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '')
    if (!name || name.split('/').some(part => part === '..' || part === '')) {
      throw new Error(`cpio: invalid path ${JSON.stringify(e.path)} (must be relative, no '..' or empty parts)`)
    }
    if (seen.has(name)) throw new Error(`cpio: duplicate path ${name}`)
    seen.add(name)
    switch (e.type) {
      case 'dir':
        add(name, S_IFDIR | (e.mode ?? 0o755), new Uint8Array())
        break
      case 'file':
        add(name, S_IFREG | (e.mode ?? 0o644), e.data)
        break
      case 'symlink':
        add(name, S_IFLNK | 0o777, Buffer.from(e.target))
        break
      case 'chardev':
        add(name, S_IFCHR | (e.mode ?? 0o600), new Uint8Array(), [e.major, e.minor])
        break
    }
  }
  add('TRAILER!!!', 0, new Uint8Array())
  const out = Buffer.concat(chunks)
  // Pad to 512 bytes like cpio(1) does.
  return Buffer.concat([out, Buffer.alloc(pad4(out.length) + ((512 - ((out.length + pad4(out.length)) % 512)) % 512))])
}
