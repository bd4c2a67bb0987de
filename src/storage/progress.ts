// Progress of a long storage operation (create from, convert, backup, a copy to another host), in bytes of the
// virtual size done out of the total: to the caller's `onProgress`, and to the running step (reportProgress:
// throttled in the worker, shown by the reporters).
import { randomBytes } from 'node:crypto'
import type { Host } from '../cluster/host.ts'
import { reportProgress } from '../runner/apiStep.ts'

export interface StorageProgress {
  /** What runs: 'create', 'convert', 'backup', 'copy', 'restore'. */
  op: string
  /** The volume being written, as pool/name. */
  target: string
  done: number
  total: number
}

export type OnProgress = (p: StorageProgress) => void

/** Reports progress of one operation: to `onProgress` and to the running step. */
export function progressReporter(host: Host, op: string, target: string, onProgress: OnProgress | undefined) {
  return (done: number, total: number) => {
    onProgress?.({ op, target, done, total })
    reportProgress({ message: `${host.name}: ${op} ${target}`, bytes: done, totalBytes: total })
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
