// `vt show-report [dir]`: serves an html report folder (reporters/html.ts) on 127.0.0.1 until Ctrl-C. Only
// files inside the folder are served: the decoded URL path is resolved against the folder (symlinks included)
// and anything that lands outside it is refused.
import type { Command } from 'commander'
import { CliError } from '../errors.ts'
import type { CliCommand } from './types.ts'

interface ShowReportFlags {
  port: string
  host?: string
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.csv': 'text/plain; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.pdf': 'application/pdf',
}

export interface ReportServer {
  url: string
  close(): Promise<void>
}

/** Starts the server for `dir` on 127.0.0.1:`port` (0 picks a free port). */
export async function serveReport(dir: string, port: number): Promise<ReportServer> {
  const fs = await import('node:fs')
  const http = await import('node:http')
  const path = await import('node:path')
  const root = fs.realpathSync(dir)

  const server = http.createServer((req, res) => {
    const refuse = (code: number, message: string) => {
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(`${message}\n`)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(405, 'method not allowed')
    let rel: string
    try {
      // The raw path, not a URL-normalized one: `/../x` must be seen (and refused), not silently become `/x`.
      const raw = (req.url ?? '/').split(/[?#]/)[0]
      rel = decodeURIComponent(raw)
    } catch {
      return refuse(400, 'bad path')
    }
    if (rel.includes('\0') || rel.split(/[/\\]/).includes('..')) return refuse(403, 'forbidden: outside the report')
    if (rel.endsWith('/')) rel += 'index.html'
    let file: string
    try {
      file = fs.realpathSync(path.join(root, rel))
    } catch {
      return refuse(404, 'not found')
    }
    if (file !== root && !file.startsWith(root + path.sep)) return refuse(403, 'forbidden: outside the report')
    let stat: import('node:fs').Stats
    try {
      stat = fs.statSync(file)
    } catch {
      return refuse(404, 'not found')
    }
    if (!stat.isFile()) return refuse(404, 'not found')
    res.writeHead(200, {
      'content-type': contentTypes[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': stat.size,
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-cache',
    })
    if (req.method === 'HEAD') return res.end()
    fs.createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as import('node:net').AddressInfo
  return {
    url: `http://127.0.0.1:${address.port}/`,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

const command: CliCommand = {
  name: 'show-report',
  register(program: Command) {
    program
      .command('show-report')
      .description('serve an html report on 127.0.0.1 (Ctrl-C to stop)')
      .argument('[dir]', 'the report folder the html reporter wrote', 'vt-report')
      .option('--port <port>', 'port to listen on (0 picks a free one)', '9323')
      .action(async (dir: string, flags: ShowReportFlags) => {
        const { existsSync, statSync } = await import('node:fs')
        const path = await import('node:path')
        const where = path.resolve(dir)
        const port = Number(flags.port)
        if (!/^\d+$/.test(flags.port) || port > 65535)
          throw new CliError(`vt show-report: --port must be a number from 0 to 65535, got "${flags.port}"`)
        if (!existsSync(where) || !statSync(where).isDirectory())
          throw new CliError(
            `vt show-report: no folder ${where}; run vt test --reporter html first, or give the report folder`,
          )
        if (!existsSync(path.join(where, 'index.html')))
          throw new CliError(`vt show-report: ${where} has no index.html; is it a folder written by the html reporter?`)
        let server: ReportServer
        try {
          server = await serveReport(where, port)
        } catch (e: any) {
          const why = e?.code === 'EADDRINUSE' ? `port ${port} is in use (try --port 0)` : (e?.message ?? String(e))
          throw new CliError(`vt show-report: cannot listen on 127.0.0.1:${port}: ${why}`)
        }
        process.stdout.write(`Serving the report ${where} at ${server.url}\nPress Ctrl-C to stop.\n`)
        await new Promise<void>(resolve => {
          const stop = () => {
            process.off('SIGINT', stop)
            process.off('SIGTERM', stop)
            resolve()
          }
          process.on('SIGINT', stop)
          process.on('SIGTERM', stop)
        })
        await server.close()
      })
  },
}

export default command
