// The time series of a migration: QEMU's numbers sampled at every poll of query-migrate (about every
// progressIntervalMs), kept with the result so reports can chart remaining bytes, throughput and dirty rate.
// A long migration keeps at most MAX_SAMPLES: past that, every other sample is dropped (the shape stays).
import type { MigrationInfo } from '../protocol/qmp.ts'
import type { MigrationPhase, MigrationSample } from './types.ts'

export const MAX_SAMPLES = 1000

export function sampleOf(info: MigrationInfo, phase: MigrationPhase, t: number): MigrationSample {
  const ram = info.ram
  return {
    t: Math.round(t),
    phase,
    status: info.status ?? 'none',
    transferredBytes: ram?.transferred ?? 0,
    remainingBytes: ram?.remaining ?? 0,
    totalBytes: ram?.total ?? 0,
    mbps: ram?.mbps ?? 0,
    dirtyBytesPerSec: (ram?.['dirty-pages-rate'] ?? 0) * (ram?.['page-size'] ?? 4096),
    dirtySyncCount: ram?.['dirty-sync-count'] ?? 0,
  }
}

export class SampleRecorder {
  readonly samples: MigrationSample[] = []
  private stride = 1
  private seen = 0

  add(sample: MigrationSample): void {
    if (this.seen++ % this.stride !== 0) return
    this.samples.push(sample)
    if (this.samples.length < MAX_SAMPLES) return
    // Halve: keep every other sample, and from now on take every 2nd (4th, ...) one.
    const kept = this.samples.filter((_, i) => i % 2 === 0)
    this.samples.splice(0, this.samples.length, ...kept)
    this.stride *= 2
  }

  /** The final sample (QEMU's final numbers) always goes in, in place of a 'completed' poll just before it. */
  finish(sample: MigrationSample): MigrationSample[] {
    if (this.samples.at(-1)?.status === 'completed') this.samples.pop()
    this.samples.push(sample)
    return this.samples
  }
}
