// vt-reseed: a 288-byte static x86-64 Linux program that a restored clone runs so that it stops sharing its random
// number generator with the template and its sibling clones. It reads 64 bytes (fresh randomness from the host)
// from stdin, mixes and credits them into the kernel's input pool (ioctl RNDADDENTROPY), then reseeds the CRNG
// at once (ioctl RNDRESEEDCRNG): a plain write to /dev/urandom would only be used at the next timed reseed.
// Exit code: 0 done, 1 short read, 2 cannot open /dev/urandom, 3 RNDADDENTROPY failed, 4 RNDRESEEDCRNG failed.
// Sent over the command channel (busybox has no ioctl tool, and it works for any guest with the channel).
//
// The code below is GNU as output of (AT&T syntax), position-independent:
//   sub $80,%rsp; movl $512,(%rsp); movl $64,4(%rsp)            rand_pool_info: 512 bits in 64 bytes
//   xor %r12d,%r12d; 1: read(0, 8(%rsp,%r12), 64-%r12) until 64  exit 1 on EOF/error
//   open("/dev/urandom", O_WRONLY)                               exit 2
//   ioctl(fd, RNDADDENTROPY=0x40085203, %rsp)                    exit 3
//   ioctl(fd, RNDRESEEDCRNG=0x5207)                              exit 4
//   exit(0)
const CODE =
  '4883ec50c7042400020000c7442404400000004531e431ff4a8d742408ba400000004429e231c00f05bf010000004885c07e614101c4' +
  '4183fc4072dab802000000488d3d53000000be0100000031d20f05bf0200000085c0783a4189c5b8100000004489efbe035208404889' +
  'e20f05bf0300000085c0751cb8100000004489efbe0752000031d20f05bf0400000085c0750231ffb83c0000000f052f6465762f7572' +
  '616e646f6d00'

const BASE = 0x400000
const HEADERS = 64 + 56

/** The program as an ELF file: one ELF header, one PT_LOAD program header (R+X) mapping the whole file. */
export function reseedProgram(): Buffer {
  const code = Buffer.from(CODE, 'hex')
  const f = Buffer.alloc(HEADERS + code.length)
  f.write('\x7fELF', 0, 'latin1')
  f.writeUInt8(2, 4) // 64-bit
  f.writeUInt8(1, 5) // little endian
  f.writeUInt8(1, 6) // ELF version
  f.writeUInt16LE(2, 16) // ET_EXEC
  f.writeUInt16LE(0x3e, 18) // x86-64
  f.writeUInt32LE(1, 20)
  f.writeBigUInt64LE(BigInt(BASE + HEADERS), 24) // entry
  f.writeBigUInt64LE(64n, 32) // program headers right after this header
  f.writeUInt16LE(64, 52) // header size
  f.writeUInt16LE(56, 54) // program header size
  f.writeUInt16LE(1, 56) // one program header
  f.writeUInt16LE(64, 58) // section header entry size (no sections)
  const ph = 64
  f.writeUInt32LE(1, ph) // PT_LOAD
  f.writeUInt32LE(5, ph + 4) // R+X
  f.writeBigUInt64LE(0n, ph + 8) // file offset
  f.writeBigUInt64LE(BigInt(BASE), ph + 16) // vaddr
  f.writeBigUInt64LE(BigInt(BASE), ph + 24) // paddr
  f.writeBigUInt64LE(BigInt(f.length), ph + 32) // file size
  f.writeBigUInt64LE(BigInt(f.length), ph + 40) // memory size
  f.writeBigUInt64LE(0x1000n, ph + 48) // alignment
  code.copy(f, HEADERS)
  return f
}
