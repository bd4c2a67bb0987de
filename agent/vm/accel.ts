// Which accelerator works on this host. /dev/kvm existing is not enough (on our machines Linux guests hang
// under KVM), so the answer comes from a probe boot of the tiny image under KVM with a deadline, cached per
// machine boot and QEMU version in the cache dir so that only the first agent after a reboot pays for it.

import { execFileSync } from 'node:child_process'
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { vmSpec } from '../../src/protocol/vm.ts'
import { cacheDir, ensureDir, withLock } from '../image/cache.ts'
import { ensureImage } from '../image/index.ts'
import { Machine } from './machine.ts'
import { socketRoot } from './sockets.ts'

export interface AccelProbe {
  kvm: boolean
  /** Why KVM is not usable (or how it was proven). */
  reason: string
  probedAt: number
  bootId: string
  qemu: string
  version?: number
}

/** Bump when the probe changes, so a cached answer from the old one is not trusted. */
const PROBE_VERSION = 2

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return 'unknown'
  }
}

function qemuVersion(): string {
  try {
    return execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0]
  } catch {
    return 'none'
  }
}

let inflight: Promise<AccelProbe> | undefined

/** The cached probe result, probing once if needed. */
export function probeAccel(opts: { timeoutMs?: number; force?: boolean } = {}): Promise<AccelProbe> {
  if (!inflight || opts.force) {
    inflight = doProbe(opts.timeoutMs ?? 8000, opts.force ?? false)
    inflight.catch(() => {
      inflight = undefined
    })
  }
  return inflight
}

async function doProbe(timeoutMs: number, force: boolean): Promise<AccelProbe> {
  const file = join(ensureDir(cacheDir()), 'accel-probe.json')
  const id = bootId()
  const qemu = qemuVersion()
  const cached = (): AccelProbe | undefined => {
    if (force || !existsSync(file)) return undefined
    try {
      const c = JSON.parse(readFileSync(file, 'utf8')) as AccelProbe
      if (c.bootId === id && c.qemu === qemu && c.version === PROBE_VERSION) return c
    } catch {}
    return undefined
  }
  const known = cached()
  if (known) return known
  // Several agents starting together (an embedded cluster) probe once: the others wait and read the answer.
  return withLock(`${file}.lock`, async () => cached() ?? (await probeNow(file, id, qemu, timeoutMs)), {
    timeoutMs: 120_000,
  })
}

async function probeNow(file: string, id: string, qemu: string, timeoutMs: number): Promise<AccelProbe> {
  const result = (kvm: boolean, reason: string): AccelProbe => {
    const r = { kvm, reason, probedAt: Date.now(), bootId: id, qemu, version: PROBE_VERSION }
    writeFileSync(`${file}.${process.pid}`, JSON.stringify(r))
    // rename is atomic: concurrent probers simply agree.
    renameSync(`${file}.${process.pid}`, file)
    return r
  }
  if (!existsSync('/dev/kvm')) return result(false, '/dev/kvm does not exist')
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK)
  } catch {
    return result(false, '/dev/kvm is not accessible to this user (add it to the kvm group)')
  }
  const image = await ensureImage('tiny')
  // A fixed place under the cache dir, used only while holding the probe lock: what a prober killed mid-probe
  // left there is removed by the next one, instead of piling up in /tmp.
  const dir = join(cacheDir(), 'kvm-probe')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  // Same for its sockets, in the short socket root (a cache dir may be too long for a socket path).
  const sockDir = join(socketRoot(), 'kvm-probe')
  rmSync(sockDir, { recursive: true, force: true })
  mkdirSync(sockDir, { recursive: true, mode: 0o700 })
  try {
    const spec = vmSpec.parse({ name: 'kvm-probe', memory: 128, readyTimeoutMs: timeoutMs })
    const m = await Machine.start({
      host: 'localhost',
      dir,
      sockDir,
      spec,
      accel: 'kvm',
      memoryMiB: 128,
      kernel: image.kernel,
      initrd: image.initrd,
      append: `${image.append} panic=-1`,
      disks: [],
    })
    const ms = Math.round(m.readyMs ?? 0)
    await m.destroy()
    return result(true, `a probe boot of the tiny guest under KVM was ready in ${ms} ms`)
  } catch (err) {
    const first = (err as Error).message.split('\n')[0].replace(/\.? Console tail:$/, '')
    return result(false, `a probe boot of the tiny guest under KVM failed: ${first}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
    rmSync(sockDir, { recursive: true, force: true })
  }
}
