// The watcher of one embedded run: `node --import tsx watcher.ts <runId>`, started by the controller in a session
// of its own (a terminal's Ctrl-C and a kill -9 of the controller do not reach it). It waits for its stdin to
// close. If the run's record is still there then, the controller died without stopping the run: the agents
// (whose stdin closed too) get a few seconds to reap their sessions and exit, then whatever the record names
// is removed: remaining agents, namespaces, the controller veth, the subnet lock, the temp dir, the record.
import { isSameProcess } from '../util/proc.ts'
import { readRunRecord, reapRun, withRunLock } from './runs.ts'

const AGENTS_GRACE_MS = 10_000

const runId = process.argv[2] ?? ''
const log = (m: string) => process.stderr.write(`${new Date().toISOString()} watcher ${runId}: ${m}\n`)
for (const signal of ['SIGINT', 'SIGHUP', 'SIGPIPE'] as const) process.on(signal, () => {})

async function cleanUp(): Promise<void> {
  const rec = readRunRecord(runId)
  if (!rec) return // stopped normally
  if (rec.startTime !== undefined && isSameProcess(rec.pid, rec.startTime)) {
    log('stdin closed but the controller lives; leaving the run to it')
    return
  }
  const started = Date.now()
  const agentsAlive = () => (rec.agents ?? []).filter(a => isSameProcess(a.pid, a.startTime))
  while (agentsAlive().length && Date.now() - started < AGENTS_GRACE_MS) await new Promise(r => setTimeout(r, 50))
  const left = agentsAlive().length
  log(`controller ${rec.pid} died; agents ${left ? `still running after ${AGENTS_GRACE_MS} ms: killed` : 'exited'}`)
  await withRunLock(() => reapRun(rec))
  log(`cleaned up in ${Date.now() - started} ms`)
}

process.stdin.on('error', () => {})
process.stdin.resume()
process.stdin.on('close', () => {
  cleanUp().then(
    () => process.exit(0),
    e => {
      log(`clean-up failed: ${(e as Error).stack}`)
      process.exit(1)
    },
  )
})
