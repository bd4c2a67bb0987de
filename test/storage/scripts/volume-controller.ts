// A controller for the storage reaping tests: connects with a short lease, makes volumes in a dir pool (a
// volume and a clone of it), prints their files as one JSON line, then waits to be killed.
import { AgentClient } from '../../../src/cluster/client.ts'
import { Host } from '../../../src/cluster/host.ts'
import { Pool } from '../../../src/storage/pool.ts'

const client = await AgentClient.connect({
  url: process.env.VT_URL as string,
  token: process.env.VT_TOKEN as string,
  leaseSeconds: Number(process.env.VT_LEASE ?? 2),
})
const host = new Host(client, process.env.VT_URL as string)
const pool = new Pool({ name: 'local', type: 'dir' }, [host])
const base = await pool.create('base', { size: '16M' })
const clone = await base.clone('clone')
const files = [(await base.info()).filename, (await clone.info()).filename]
process.stdout.write(`${JSON.stringify({ files, session: client.session.id })}\n`)
setInterval(() => {}, 1000)
