// A VM's interactive shell for `vt console`: the agent connects to the socket of the guest's virtio console
// (port 0, /dev/hvc0 in the tiny guest, where /init keeps a shell running) and relays bytes. QEMU serves one
// client per socket, so a new attach takes the console over from an older one (a `vt console` killed without
// detaching must not lock the VM out). The window size is set with stty over the command channel: a virtio
// console has no way to carry it.
import type net from 'node:net'
import { paths } from '../vm/argv.ts'
import { connectUnix } from '../vm/guest.ts'
import type { Machine } from '../vm/machine.ts'

export interface ShellSink {
  data(chunk: Buffer): void
  closed(reason: string, exitCode?: number): void
}

/** Open VM shells by VM (per agent: the caller keeps the map), so that a new attach detaches the old one. */
export type VmShells = Map<string, VmShell>

export class VmShell {
  private done = false

  private constructor(
    private readonly machine: Machine,
    private readonly socket: net.Socket,
    private readonly sink: ShellSink,
  ) {
    socket.on('data', chunk => sink.data(chunk))
    socket.on('close', () => this.end(`the console of ${machine.label} closed (${machine.exitReason()})`))
  }

  static async attach(machine: Machine, key: string, shells: VmShells, sink: ShellSink): Promise<VmShell> {
    if (!machine.guest) {
      throw new Error(
        `${machine.label} has no vt console: only VMs booted from a vt image (the tiny guest) have a shell on their virtio console`,
      )
    }
    if (!machine.alive) throw new Error(`${machine.label}: ${machine.exitReason()}`)
    shells.get(key)?.end(`another vt console attached to ${machine.label}`)
    const abort = new AbortController()
    const socket = await connectUnix(paths(machine.dir, machine.sockDir).shell, abort.signal, 5000)
    const shell = new VmShell(machine, socket, sink)
    shells.set(key, shell)
    socket.once('close', () => {
      if (shells.get(key) === shell) shells.delete(key)
    })
    return shell
  }

  write(chunk: Buffer): void {
    if (!this.done) this.socket.write(chunk)
  }

  /** Sets the guest tty's size; the foreground program gets SIGWINCH. Best effort (a paused VM runs nothing). */
  resize(cols: number, rows: number): void {
    this.machine.exec(`stty -F /dev/hvc0 rows ${rows | 0} cols ${cols | 0}`, { timeoutMs: 5000 }).catch(() => {})
  }

  /** Detaches; the guest's shell keeps running for the next attach. */
  end(reason: string): void {
    if (this.done) return
    this.done = true
    this.socket.destroy()
    this.sink.closed(reason)
  }
}
