// A controller for the nfs reaping test: connects, makes a volume and a clone of it in the nfs pool given as
// JSON in VT_POOL, prints their names as one JSON line, then waits to be killed.
import { AgentClient } from '../../../src/cluster/client.ts'
import { Host } from '../../../src/cluster/host.ts'
import type { PoolDef } from '../../../src/protocol/storage.ts'
import { Pool } from '../../../src/storage/pool.ts'

const client = await AgentClient.connect({ url: process.env.VT_URL as string, token: process.env.VT_TOKEN as string })
const host = new Host(client, process.env.VT_URL as string)
const pool = new Pool(JSON.parse(process.env.VT_POOL as string) as PoolDef, [host])
const base = await pool.create('reap-base.qcow2', { size: '16M' })
await base.clone('reap-clone.qcow2')
process.stdout.write(`${JSON.stringify({ names: ['reap-base.qcow2', 'reap-clone.qcow2'] })}\n`)
setInterval(() => {}, 1000)
