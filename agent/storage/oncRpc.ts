// ONC RPC (RFC 5531) over TCP with XDR (RFC 4506): just what the NFS pool's few metadata calls need (portmapper,
// MOUNT, NFSv3). QEMU and qemu-img move a volume's data over NFS themselves (libnfs); the agent only lists,
// removes and measures, which no Debian tool does over NFS (libnfs-utils has ls and cp, no rm or statfs).
import { randomInt } from 'node:crypto'
import { connect, type Socket } from 'node:net'

export class XdrWriter {
  private readonly parts: Buffer[] = []
  u32(n: number): this {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(n >>> 0)
    this.parts.push(b)
    return this
  }
  u64(n: bigint): this {
    const b = Buffer.alloc(8)
    b.writeBigUInt64BE(n)
    this.parts.push(b)
    return this
  }
  /** Variable-length opaque: length, bytes, zero padding to 4. */
  opaque(data: Buffer): this {
    this.u32(data.length)
    return this.fixed(data)
  }
  /** Fixed-length opaque: bytes and padding only. */
  fixed(data: Buffer): this {
    this.parts.push(data, Buffer.alloc((4 - (data.length % 4)) % 4))
    return this
  }
  string(s: string): this {
    return this.opaque(Buffer.from(s, 'utf8'))
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts)
  }
}

export class XdrReader {
  private pos = 0
  constructor(private readonly buf: Buffer) {}
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error('truncated XDR reply')
  }
  u32(): number {
    this.need(4)
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }
  u64(): bigint {
    this.need(8)
    const v = this.buf.readBigUInt64BE(this.pos)
    this.pos += 8
    return v
  }
  bool(): boolean {
    return this.u32() !== 0
  }
  fixed(n: number): Buffer {
    this.need(n)
    const v = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n + ((4 - (n % 4)) % 4)
    return v
  }
  opaque(): Buffer {
    return this.fixed(this.u32())
  }
  string(): string {
    return this.opaque().toString('utf8')
  }
  skip(n: number): void {
    this.need(n)
    this.pos += n
  }
}

const ACCEPT_ERRORS = [
  '',
  'program unavailable',
  'program version mismatch',
  'procedure unavailable',
  'garbage arguments',
  'system error',
]

/** One TCP connection to one RPC program; calls go one at a time (all the pool's metadata needs). */
export class RpcConnection {
  private buffered = Buffer.alloc(0)
  private fragments: Buffer[] = []
  private waiting?: { xid: number; resolve: (r: XdrReader) => void; reject: (e: Error) => void }
  private failure?: Error
  private queue: Promise<void> = Promise.resolve()

  private constructor(
    private readonly socket: Socket,
    readonly what: string,
    private readonly timeoutMs: number,
  ) {
    socket.on('data', d => this.onData(d))
    const fail = (e: Error) => {
      this.failure = e
      this.waiting?.reject(e)
      this.waiting = undefined
    }
    socket.on('error', e => fail(new Error(`${what}: ${e.message}`)))
    socket.on('close', () => fail(new Error(`${what}: the server closed the connection`)))
  }

  /**
   * Connects from a reserved port (below 1024) when running as root: servers export with "secure" by default
   * (Linux's nfsd does) and refuse clients on higher ports.
   */
  static async open(host: string, port: number, what: string, timeoutMs: number): Promise<RpcConnection> {
    const root = process.getuid?.() === 0
    for (let attempt = 0; ; attempt++) {
      const localPort = root && attempt < 8 ? randomInt(665, 1024) : undefined
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect({ host, port, localPort })
          const timer = setTimeout(() => {
            s.destroy()
            reject(new Error(`no answer within ${timeoutMs / 1000} s`))
          }, timeoutMs)
          s.once('connect', () => {
            clearTimeout(timer)
            s.removeAllListeners('error')
            resolve(s)
          })
          s.once('error', e => {
            clearTimeout(timer)
            reject(e)
          })
        })
        socket.setNoDelay(true)
        return new RpcConnection(socket, what, timeoutMs)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        if (localPort !== undefined && (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL')) continue
        throw new Error(`${what} at ${host}:${port}: ${(e as Error).message}`)
      }
    }
  }

  /** Calls `proc` of (prog, vers) with AUTH_UNIX as uid/gid 0 (QEMU's files belong to root, the agent is root). */
  call(prog: number, vers: number, proc: number, args: Buffer): Promise<XdrReader> {
    // One call at a time on a connection: a call waits for the one before it to be answered.
    const run = this.queue.then(() => this.send(prog, vers, proc, args))
    this.queue = run.then(
      () => {},
      () => {},
    )
    return run
  }

  private send(prog: number, vers: number, proc: number, args: Buffer): Promise<XdrReader> {
    if (this.failure) return Promise.reject(this.failure)
    const xid = randomInt(1, 2 ** 31)
    const cred = new XdrWriter().u32(0).string('vt-agent').u32(0).u32(0).u32(0).bytes()
    const msg = new XdrWriter()
      .u32(xid)
      .u32(0) // CALL
      .u32(2) // RPC version
      .u32(prog)
      .u32(vers)
      .u32(proc)
      .u32(1) // AUTH_UNIX
      .opaque(cred)
      .u32(0) // verifier: AUTH_NONE
      .u32(0)
      .bytes()
    const body = Buffer.concat([msg, args])
    const mark = Buffer.alloc(4)
    mark.writeUInt32BE((0x80000000 | body.length) >>> 0)
    return new Promise<XdrReader>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined
        reject(new Error(`${this.what}: no answer within ${this.timeoutMs / 1000} s`))
        this.socket.destroy()
      }, this.timeoutMs)
      this.waiting = {
        xid,
        resolve: r => {
          clearTimeout(timer)
          resolve(r)
        },
        reject: e => {
          clearTimeout(timer)
          reject(e)
        },
      }
      this.socket.write(Buffer.concat([mark, body]))
    })
  }

  close(): void {
    this.socket.destroy()
  }

  private onData(d: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, d])
    while (this.buffered.length >= 4) {
      const mark = this.buffered.readUInt32BE(0)
      const len = mark & 0x7fffffff
      if (this.buffered.length < 4 + len) return
      this.fragments.push(this.buffered.subarray(4, 4 + len))
      this.buffered = this.buffered.subarray(4 + len)
      if (mark & 0x80000000) {
        const record = Buffer.concat(this.fragments)
        this.fragments = []
        this.onRecord(record)
      }
    }
  }

  private onRecord(record: Buffer): void {
    const w = this.waiting
    if (!w) return
    try {
      const r = new XdrReader(record)
      if (r.u32() !== w.xid) return // a late reply to a call that timed out
      if (r.u32() !== 1) throw new Error('not an RPC reply')
      if (r.u32() !== 0) {
        const why = r.u32() === 0 ? 'RPC version mismatch' : `authentication refused (auth_stat ${r.u32()})`
        throw new Error(`${this.what}: call denied: ${why}`)
      }
      r.u32() // verifier flavor
      r.opaque()
      const stat = r.u32()
      if (stat !== 0) throw new Error(`${this.what}: ${ACCEPT_ERRORS[stat] ?? `accept_stat ${stat}`}`)
      this.waiting = undefined
      w.resolve(r)
    } catch (e) {
      this.waiting = undefined
      w.reject(e as Error)
    }
  }
}
