// The user's end of `vt console`: the local terminal in raw mode (every key, Ctrl-C included, goes to the remote
// shell), the agent's `console` service on a binary stream, window size changes passed on, and Ctrl-] to detach.
import type { AgentClient } from '../cluster/client.ts'
import type { ConsoleOpenRequest } from '../protocol/console.ts'

/** The byte Ctrl-] sends: detaches, as in telnet and virsh console. */
export const ESCAPE_BYTE = 0x1d

export interface TerminalIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown }
  stdout: NodeJS.WritableStream & { columns?: number; rows?: number; on(event: 'resize', fn: () => void): unknown }
  stderr: NodeJS.WritableStream
}

/**
 * Attaches the terminal to a console on `client`'s agent until the user detaches, the remote side closes, or
 * the link is lost. Resolves with an exit code: the host shell's, else 0 (detached) or 1 (lost).
 */
export async function attachTerminal(
  client: AgentClient,
  target: ConsoleOpenRequest['target'],
  io: TerminalIo,
): Promise<number> {
  let finish!: (r: { reason: string; code: number }) => void
  const ended = new Promise<{ reason: string; code: number }>(resolve => (finish = resolve))
  const stream = client.newStream(chunk => io.stdout.write(chunk))
  const offClosed = client.on('console', 'closed', ev => {
    if (ev.stream === stream) finish({ reason: ev.reason, code: ev.exitCode ?? 0 })
  })
  const offLink = client.onClosed(why => finish({ reason: `lost the agent of ${client.host}: ${why}`, code: 1 }))
  const svc = client.service('console')
  const size = () => ({ cols: io.stdout.columns || 80, rows: io.stdout.rows || 24 })
  let opened: { label: string }
  try {
    opened = await svc.open({ target, stream, ...size(), ...(termName() ? { term: termName() } : {}) })
  } catch (e) {
    offClosed()
    offLink()
    client.endStream(stream)
    throw e
  }
  const raw = !!io.stdin.isTTY && typeof io.stdin.setRawMode === 'function'
  io.stderr.write(
    `vt console: connected to ${opened.label}. Ctrl-] detaches${target.kind === 'vm' ? '; press Enter for a prompt' : ''}.\r\n`,
  )
  if (raw) io.stdin.setRawMode?.(true)
  const onData = (data: Buffer | string) => {
    const chunk = typeof data === 'string' ? Buffer.from(data) : data
    const at = chunk.indexOf(ESCAPE_BYTE)
    const send = at === -1 ? chunk : chunk.subarray(0, at)
    if (send.length) client.sendChunk(stream, send).catch(() => {})
    if (at !== -1) finish({ reason: 'detached', code: 0 })
  }
  const onEnd = () => finish({ reason: 'detached (end of input)', code: 0 })
  const onResize = () => {
    const { cols, rows } = size()
    svc.resize(stream, cols, rows).catch(() => {})
  }
  io.stdin.on('data', onData)
  io.stdin.on('end', onEnd)
  io.stdout.on('resize', onResize)
  io.stdin.resume()
  const result = await ended
  io.stdin.off('data', onData)
  io.stdin.off('end', onEnd)
  io.stdout.removeListener('resize', onResize)
  io.stdin.pause()
  if (raw) io.stdin.setRawMode?.(false)
  offClosed()
  offLink()
  await client.flush().catch(() => {})
  if (client.state === 'connected') await svc.close(stream).catch(() => {})
  client.endStream(stream)
  io.stderr.write(`\r\nvt console: ${result.reason}\r\n`)
  return result.code
}

function termName(): string | undefined {
  const term = process.env.TERM
  return term && /^[A-Za-z0-9._+-]{1,64}$/.test(term) ? term : undefined
}
