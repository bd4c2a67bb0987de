// Capacity arithmetic both sides share: sizes, the machine's capacity, its split over embedded hosts, and the
// words that say what is free where. Memory is never overcommitted; cpus are vCPUs, which time-share cores.
import os from 'node:os'

/** vCPUs the machine offers per core by default: vCPUs are threads, mostly idle in tests (OpenStack's old 16:1). */
export const VCPUS_PER_CORE = 16

export interface CapacityNumbers {
  memoryBytes: number
  cpus: number
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }

/** '512M', '2G', '1.5GiB' → bytes. Plain numbers are bytes. */
export function parseSize(size: number | string): number {
  if (typeof size === 'number') return size
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(size)
  if (!m) throw new SizeError(`"${size}" is not a size (use bytes or e.g. 512M, 2G)`)
  return Math.round(Number(m[1]) * UNITS[m[2].toUpperCase()])
}

export class SizeError extends Error {
  override name = 'SizeError'
}

/** Bytes as people read them: '512 MiB', '1.5 GiB'. */
export function formatBytes(bytes: number): string {
  const mib = bytes / 1024 ** 2
  if (Math.abs(mib) >= 1024) return `${trim(mib / 1024)} GiB`
  if (Math.abs(bytes) >= 1024 ** 2) return `${trim(mib)} MiB`
  return `${bytes} bytes`
}

function trim(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1).replace(/\.0$/, '')
}

/** What this machine has to offer: all its memory, VCPUS_PER_CORE vCPUs per core. */
export function machineCapacity(): CapacityNumbers {
  return { memoryBytes: os.totalmem(), cpus: os.availableParallelism() * VCPUS_PER_CORE }
}

/**
 * Splits a machine over `count` embedded hosts: a host with explicit values keeps them, the others share what
 * is left equally (memory in whole MiB, at least one vCPU). Sums never exceed the machine unless the explicit
 * values already do (see overcommit).
 */
export function splitCapacity(
  machine: CapacityNumbers,
  count: number,
  explicit: (Partial<CapacityNumbers> | undefined)[] = [],
): CapacityNumbers[] {
  const share = (key: keyof CapacityNumbers, unit: number, min: number): number[] => {
    const given = Array.from({ length: count }, (_, i) => explicit[i]?.[key])
    const left = machine[key] - given.reduce<number>((s, v) => s + (v ?? 0), 0)
    const open = given.filter(v => v === undefined).length
    const each = open > 0 ? Math.max(min, Math.floor(Math.max(0, left) / open / unit) * unit) : 0
    return given.map(v => v ?? each)
  }
  const memory = share('memoryBytes', 1024 ** 2, 1024 ** 2)
  const cpus = share('cpus', 1, 1)
  return memory.map((m, i) => ({ memoryBytes: m, cpus: cpus[i] }))
}

/** 'needs 2 GiB and 1 cpu' */
export function describeNeed(want: CapacityNumbers): string {
  return `${formatBytes(want.memoryBytes)} and ${plural(want.cpus, 'cpu')}`
}

export interface BookingSummary {
  kind: 'reservation' | 'vm'
  label?: string
}

/** 'host b has 512 MiB free of 4 GiB and 6 of 8 cpus (3 VMs: a, b, c; 1 reservation)' */
export function describeFree(
  host: string,
  status: { total: CapacityNumbers; free: CapacityNumbers; reservations: BookingSummary[] },
): string {
  const vms = status.reservations.filter(r => r.kind === 'vm')
  const held = status.reservations.length - vms.length
  const names = vms.map(v => v.label ?? '?')
  const shown = names.length > 4 ? [...names.slice(0, 4), `${names.length - 4} more`] : names
  const who = [
    vms.length ? `${plural(vms.length, 'VM')}: ${shown.join(', ')}` : '0 VMs',
    ...(held ? [plural(held, 'reservation')] : []),
  ].join('; ')
  return (
    `host ${host} has ${formatBytes(status.free.memoryBytes)} free of ${formatBytes(status.total.memoryBytes)} ` +
    `and ${status.free.cpus} of ${plural(status.total.cpus, 'cpu')} (${who})`
  )
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}
