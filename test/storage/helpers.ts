// A real agent, a Host on it and its dir pool, for the storage tests; qemu-io to write and check patterns.
import { execFileSync } from 'node:child_process'
import { AgentClient } from '../../src/cluster/client.ts'
import { Host } from '../../src/cluster/host.ts'
import type { PoolDef } from '../../src/protocol/storage.ts'
import { Pool } from '../../src/storage/pool.ts'
import { startTestAgent, type TestAgent } from '../agent/helpers.ts'

export interface StorageRig {
  agent: TestAgent
  client: AgentClient
  host: Host
  pool: Pool
  def: PoolDef
}

export async function storageRig(): Promise<StorageRig> {
  const agent = await startTestAgent()
  const client = await AgentClient.connect({ url: agent.url, token: agent.token })
  const host = new Host(client, agent.url)
  const def: PoolDef = { name: 'local', type: 'dir' }
  return { agent, client, host, pool: new Pool(def, [host]), def }
}

/** Writes `pattern` (a byte) over [offset, offset + length) of an image, through qemu-io. */
export function writePattern(file: string, pattern: number, offset: string, length: string, format = 'qcow2'): void {
  execFileSync('qemu-io', ['-f', format, '-c', `write -P ${pattern} ${offset} ${length}`, file], { stdio: 'pipe' })
}

/** Whether [offset, offset + length) of an image holds `pattern` throughout. */
export function hasPattern(file: string, pattern: number, offset: string, length: string, format = 'qcow2'): boolean {
  try {
    const out = execFileSync(
      'qemu-io',
      ['-r', '-U', '-f', format, '-c', `read -P ${pattern} ${offset} ${length}`, file],
      {
        encoding: 'utf8',
        stdio: 'pipe',
      },
    )
    return !/Pattern verification failed/.test(out)
  } catch {
    return false
  }
}
