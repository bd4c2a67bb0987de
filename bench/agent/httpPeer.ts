// The comparison peer: a plain HTTP JSON endpoint on loopback, in its own process like the agent.
// POST /ping echoes its JSON body; PUT /file writes the body to a file; GET /file streams that file back —
// the same disk work the agent does.
import { createReadStream, createWriteStream } from 'node:fs'
import { createServer } from 'node:http'

const file = process.env.VT_PEER_FILE as string
const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/ping') {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', d => {
      body += d
    })
    req.on('end', () => {
      const value = JSON.parse(body)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ result: value }))
    })
    return
  }
  if (req.method === 'PUT' && req.url === '/file') {
    const out = createWriteStream(file)
    req.pipe(out)
    out.on('finish', () => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: true }))
    })
    return
  }
  if (req.method === 'GET' && req.url === '/file') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(res)
    return
  }
  res.writeHead(404)
  res.end()
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`)
})
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
