// Serial console capture. QEMU writes everything to console.log itself (chardev logfile=, even while no one
// is connected); we also connect to the chardev socket to stream output live and keep a bounded tail in
// memory for `waitFor` and error messages.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import type net from 'node:net'

const TAIL = 256 * 1024

export class ConsoleCapture {
  private tailText = ''
  private socket: net.Socket | undefined
  private readonly listeners = new Set<(text: string) => void>()
  private readonly decoder = new TextDecoder('utf-8', { fatal: false })

  constructor(readonly logFile: string) {}

  attach(socket: net.Socket): void {
    this.socket = socket
    socket.on('data', chunk => {
      const text = this.decoder.decode(chunk, { stream: true })
      if (!text) return
      this.tailText = (this.tailText + text).slice(-TAIL)
      for (const l of this.listeners) l(text)
    })
    socket.on('error', () => {})
  }

  onData(fn: (text: string) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  write(data: Uint8Array | string): void {
    this.socket?.write(data)
  }

  /** The last `maxBytes` of the log file (everything QEMU wrote, including before we connected). */
  text(maxBytes = 4 * 1024 * 1024): string {
    try {
      const size = statSync(this.logFile).size
      if (size <= maxBytes) return readFileSync(this.logFile, 'utf8')
      const fd = openSync(this.logFile, 'r')
      try {
        const buf = Buffer.alloc(maxBytes)
        readSync(fd, buf, 0, maxBytes, size - maxBytes)
        return buf.toString('utf8')
      } finally {
        closeSync(fd)
      }
    } catch {
      return this.tailText
    }
  }

  /** The last lines, cleaned of terminal escapes, for error messages. */
  tail(lines = 20): string {
    const text = this.text(64 * 1024)
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .replace(/[\x00-\x08\x0b-\x1f]/g, '')
    return text
      .split('\n')
      .filter(l => l.trim())
      .slice(-lines)
      .join('\n')
  }

  /**
   * Why the guest's kernel died, from its last words on the console: a panic's reason (with the out-of-memory
   * line before it, when there is one). Undefined when the console shows no such thing.
   */
  lastWords(): string | undefined {
    const text = this.text(256 * 1024)
    const panic = /Kernel panic - not syncing: ([^\r\n]*)/.exec(text)
    if (!panic) return undefined
    const oom = /(Out of memory[^\r\n]*|System is deadlocked on memory)/.exec(
      text.slice(0, panic.index + panic[0].length),
    )
    const reason = panic[1].trim()
    return oom && !reason.includes(oom[1])
      ? `the guest kernel panicked: ${reason} (${oom[1].trim()})`
      : `the guest kernel panicked: ${reason}`
  }

  close(): void {
    this.socket?.destroy()
    this.listeners.clear()
  }
}
