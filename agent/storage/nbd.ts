// A volume served read-only over NBD (qemu-nbd), so that another host copies it with `qemu-img convert
// nbd://...`: how a volume crosses hosts (a backup to another host's dir pool). qemu-nbd forks once it
// listens; the caller records its pid with the session, which kills it at the end whatever happens.

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { VtError } from '../../src/protocol/errors.ts'

function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', err => reject(new Error(`no free port on ${address}: ${err.message}`)))
    srv.listen(0, address, () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

export interface NbdExport {
  id: string
  url: string
  pid: number
}

/** Starts qemu-nbd for `filename` on `address`; resolves once it listens. */
export async function startExport(filename: string, format: string, address: string, dir: string): Promise<NbdExport> {
  const id = `nbd-${randomBytes(4).toString('hex')}`
  const pidFile = join(dir, `${id}.pid`)
  const port = await freePort(address)
  const args = [
    '--read-only',
    '--persistent',
    '--shared=8',
    `--export-name=${id}`,
    `--bind=${address}`,
    `--port=${port}`,
    `--format=${format}`,
    '--fork',
    `--pid-file=${pidFile}`,
    filename,
  ]
  await new Promise<void>((resolve, reject) => {
    const child = spawn('qemu-nbd', args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (t: string) => {
      err += t
    })
    child.on('error', e => reject(e))
    child.on('close', code =>
      code === 0
        ? resolve()
        : reject(new VtError('NbdError', `qemu-nbd ${args.join(' ')} failed: ${err.trim()}`, { code: 'NBD' })),
    )
  })
  const pid = Number((await readFile(pidFile, 'utf8')).trim())
  await rm(pidFile, { force: true })
  const host = address.includes(':') ? `[${address}]` : address
  return { id, url: `nbd://${host}:${port}/${id}`, pid }
}
