// Host-local steps of live migration (contract: src/protocol/migration.ts).
import { realpath, rm } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { sep } from 'node:path'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import { checkMemoryDumpFile } from '../memtest/check.ts'
import { implement } from '../service.ts'

function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', err =>
      reject(new Error(`no free port on ${address}: ${(err as Error).message} (is it one of this host's addresses?)`)),
    )
    srv.listen(0, address, () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

function probe(address: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port })
    const fail = (why: string) => {
      socket.destroy()
      reject(
        new VtError(ErrorNames.timeout, `cannot reach ${address}:${port} from this host: ${why}`, {
          code: 'UNREACHABLE',
        }),
      )
    }
    const timer = setTimeout(() => fail(`no TCP connection within ${timeoutMs} ms (partitioned?)`), timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.destroy()
      resolve()
    })
    socket.once('error', e => {
      clearTimeout(timer)
      fail(e.message)
    })
  })
}

export const migrationService = implement('migration', agent => {
  const allowed = async () => {
    const dirs = [agent.stateDir, ...agent.roots]
    return Promise.all(dirs.map(d => realpath(d).catch(() => d)))
  }
  return () => ({
    freePort: ({ address }) => freePort(address),
    probe: ({ address, port, timeoutMs }) => probe(address, port, timeoutMs),
    async checkMemoryDump({ path, start, size, keep }) {
      const real = await realpath(path).catch(() => {
        throw new VtError(ErrorNames.notFound, `memory dump ${path} does not exist (did pmemsave fail?)`)
      })
      const inside = (await allowed()).some(d => real.startsWith(d.endsWith(sep) ? d : d + sep))
      if (!inside) {
        throw new VtError(
          ErrorNames.outsideRoots,
          `memory dump ${path} is outside the agent's state dir and allowed roots`,
          { code: 'OUTSIDE_ROOTS' },
        )
      }
      try {
        return await checkMemoryDumpFile(real, start, size)
      } finally {
        if (!keep) await rm(real, { force: true })
      }
    },
  })
})
