// Raw QEMU processes on this machine, driven by our QMP client: what the memtest guest and the hand-written
// migration sequence (bench/migration) need before, and independently of, the agent and the Vm handle.
import { type ChildProcess, spawn } from 'node:child_process'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkMemoryDumpFile } from '../../../agent/memtest/check.ts'
import { buildMemtestImage } from '../../../agent/memtest/image.ts'
import { QmpClient } from '../../../agent/qmp/index.ts'
import type { MemoryDumpAccess } from '../../../src/migration/verify.ts'
import { type MemtestRange, memtestRange } from '../../../src/protocol/memtest.ts'

const MiB = 1024 * 1024

export interface LocalQemu {
  name: string
  dir: string
  disk: string
  qmp: QmpClient
  proc: ChildProcess
  range: MemtestRange
  serialPath: string
  serial(): Promise<string>
  /** Resolves once the serial output holds `count` more 'B' (finished passes) than it did at call time. */
  waitForPasses(count: number, timeoutMs?: number): Promise<void>
  access(): MemoryDumpAccess
  exited: Promise<number | null>
  kill(): Promise<void>
}

export interface LocalQemuOptions {
  name: string
  memoryMiB: number
  incoming?: boolean
  extraArgs?: string[]
  /** The disk image to use (left in place on kill); default: a private copy of the memtest image. */
  disk?: string
  /** With no `disk`: a private zero-filled disk of the memtest image's size (a storage-copy target). */
  blankDisk?: boolean
  /** No disk at all: the firmware finds nothing to boot and the guest sits idle. */
  noDisk?: boolean
  /** The RAM range the memtest loop dirties (default: memtestRange of the memory size). */
  range?: MemtestRange
  /** Run QEMU inside this network namespace (`ip netns exec` execs it, so the pid is QEMU's). */
  netns?: string
}

export async function startLocalMemtest(options: LocalQemuOptions): Promise<LocalQemu> {
  const range = options.range ?? memtestRange(options.memoryMiB * MiB)
  // The pid in the name lets a test look for its own leftovers only.
  const dir = await mkdtemp(join(tmpdir(), `vt-mig-${process.pid}-${options.name}-`))
  const disk = options.disk ?? join(dir, 'memtest.raw')
  if (options.noDisk) {
    // nothing to prepare
  } else if (options.blankDisk && !options.disk) await writeFile(disk, Buffer.alloc(MiB))
  else if (!options.disk) await copyFile(await buildMemtestImage(range), disk)
  const qmpPath = join(dir, 'qmp.sock')
  const serialPath = join(dir, 'serial.log')
  const args = [
    '-accel',
    'tcg',
    '-m',
    `${options.memoryMiB}`,
    '-display',
    'none',
    '-nodefaults',
    '-serial',
    `file:${serialPath}`,
    '-qmp',
    `unix:${qmpPath},server=on,wait=off`,
    ...(options.noDisk ? [] : ['-drive', `file=${disk},format=raw,if=ide`]),
    ...(options.incoming ? ['-incoming', 'defer'] : []),
    ...(options.extraArgs ?? []),
  ]
  const proc = options.netns
    ? spawn('ip', ['netns', 'exec', options.netns, 'qemu-system-x86_64', ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
      })
    : spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr?.on('data', d => {
    stderr += d
  })
  const exited = new Promise<number | null>(resolve => proc.on('exit', code => resolve(code)))
  const abort = new AbortController()
  void exited.then(() => abort.abort(new Error(`qemu exited: ${stderr.trim()}`)))
  let qmp: QmpClient
  try {
    qmp = await QmpClient.connect(qmpPath, { label: options.name, signal: abort.signal })
  } catch (e) {
    proc.kill('SIGKILL')
    await exited
    await rm(dir, { recursive: true, force: true })
    throw e
  }
  const serial = async () => {
    try {
      return await readFile(serialPath, 'latin1')
    } catch {
      return ''
    }
  }
  const count = (s: string) => s.length - s.replaceAll('B', '').length
  return {
    name: options.name,
    dir,
    disk,
    qmp,
    proc,
    range,
    serialPath,
    serial,
    exited,
    async waitForPasses(n, timeoutMs = 30_000) {
      const base = count(await serial())
      const deadline = Date.now() + timeoutMs
      while (count(await serial()) < base + n) {
        if (Date.now() > deadline) throw new Error(`${options.name}: fewer than ${n} memtest passes in ${timeoutMs} ms`)
        if (proc.exitCode !== null) throw new Error(`${options.name}: qemu exited: ${stderr.trim()}`)
        await new Promise(r => setTimeout(r, 50))
      }
    },
    access() {
      return {
        qmp,
        dumpDir: dir,
        label: options.name,
        check: (path, r) => checkMemoryDumpFile(path, r.start, r.end - r.start),
        remove: path => rm(path, { force: true }),
      }
    },
    async kill() {
      qmp.close()
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
      await exited
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** A free TCP port on 127.0.0.1 (bound then released; the caller uses it right away). */
export async function freeLoopbackPort(): Promise<number> {
  const net = await import('node:net')
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

/** A memtest disk outside any VM's dir, as a shared pool would hold it. Returns its path and a cleanup. */
export async function sharedMemtestDisk(memoryMiB: number): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'vt-mig-pool-'))
  const path = join(dir, 'memtest.raw')
  await copyFile(await buildMemtestImage(memtestRange(memoryMiB * MiB)), path)
  return { path, remove: () => rm(dir, { recursive: true, force: true }) }
}
