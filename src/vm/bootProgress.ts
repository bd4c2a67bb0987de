// What a VM's creation shows while it lasts: the boot, and the host's messages when its first use builds the
// tiny image. In a test it is progress of the running step (the list reporter shows it with the time it takes),
// elsewhere a line on stderr for each message of the host.
import type { Host } from '../cluster/host.ts'
import { currentTestTitle, reportProgress } from '../runner/apiStep.ts'

/** Starts showing the creation of VM `name` on `host`; the returned function ends it (booted or failed). */
export function showBoot(host: Host, name: string): () => void {
  const inTest = currentTestTitle() !== undefined
  const off = host.on('vm', 'progress', e => {
    if (inTest) reportProgress({ message: `${host.name}: ${e.message}` })
    else process.stderr.write(`vt: ${host.name}: ${e.message}\n`)
  })
  if (inTest) reportProgress({ message: `booting ${name} on ${host.name}` })
  return () => {
    off()
    if (inTest) reportProgress({})
  }
}
