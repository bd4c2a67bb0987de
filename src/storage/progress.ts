// Progress of a long storage operation (create from, convert, backup, a copy to another host), in bytes of the
// virtual size done out of the total. Reported to the caller's `onProgress` and, about once a second, as a line
// on the test's stderr (which every reporter shows with the test): the small channel steps have for progress.
import { randomBytes } from 'node:crypto'
import type { Host } from '../cluster/host.ts'

export interface StorageProgress {
  /** What runs: 'create', 'convert', 'backup', 'copy'. */
  op: string
  /** The volume being written, as pool/name. */
  target: string
  done: number
  total: number
}

export type OnProgress = (p: StorageProgress) => void

const MiB = 1024 * 1024

function line(host: Host, p: StorageProgress): string {
  const pct = p.total > 0 ? Math.floor((p.done / p.total) * 100) : 100
  return `vt: ${host.name}: ${p.op} ${p.target}: ${Math.round(p.done / MiB)} / ${Math.round(p.total / MiB)} MiB (${pct}%)\n`
}

/** Reports progress of one operation: to `onProgress`, and a line on stderr at most once a second. */
export function progressReporter(host: Host, op: string, target: string, onProgress: OnProgress | undefined) {
  let printed = Date.now()
  return (done: number, total: number) => {
    const p = { op, target, done, total }
    onProgress?.(p)
    const now = Date.now()
    if (now - printed >= 1000) {
      printed = now
      process.stderr.write(line(host, p))
    }
  }
}

/**
 * Listens to `host`'s storage progress events for one agent call: `run` gets the id to pass to the call; the
 * listener ends when it settles.
 */
export async function withProgress<T>(
  host: Host,
  op: string,
  target: string,
  onProgress: OnProgress | undefined,
  run: (id: string) => Promise<T>,
): Promise<T> {
  const id = randomBytes(6).toString('hex')
  const report = progressReporter(host, op, target, onProgress)
  const off = host.on('storage', 'progress', e => {
    if (e.id === id) report(e.done, e.total)
  })
  try {
    return await run(id)
  } finally {
    off()
  }
}
