// A bench party process (like a worker): on 'round' it brings `parties` arrivals to one barrier, either through
// vt's IPC to the parent's sync server, or Autotest-style with one TCP connection per party to the parent's
// rendezvous server; then it reports 'done'.
import net from 'node:net'
import { IpcTransport, type SyncToWorker } from '../../src/sync/transport.ts'

type Round = { type: 'round'; id: string; parties: number; total: number; mode: 'ipc' | 'tcp'; port: number }

const transport = new IpcTransport(m => process.send!(m))

function tcpParty(port: number, name: string, total: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ host: '127.0.0.1', port }, () => s.write(`${name} ${total}\n`))
    s.setNoDelay(true)
    s.on('data', () => {
      s.destroy()
      resolve()
    })
    s.on('error', reject)
  })
}

process.on('message', async (m: Round | SyncToWorker | { type: 'exit' }) => {
  if (m.type === 'syncReply' || m.type === 'syncArrival') return transport.handle(m)
  if (m.type === 'exit') process.exit(0)
  if (m.type !== 'round') return
  const arrivals = Array.from({ length: m.parties }, async () => {
    if (m.mode === 'tcp') return tcpParty(m.port, m.id, m.total)
    const { reply } = transport.request(
      { kind: 'spec', label: `bench ${process.pid}` },
      { op: 'barrier', name: m.id, parties: m.total },
    )
    const r = await reply
    if (!r.ok) throw new Error(r.message)
  })
  await Promise.all(arrivals)
  process.send!({ type: 'done', id: m.id })
})
process.send!({ type: 'ready' })
