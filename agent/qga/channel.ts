// A VM's qemu-guest-agent channel: the client, exec/files over it, and whether the guest has the port open
// (QEMU's VSERPORT_CHANGE events), so that a guest without the agent gets an error that says so rather than
// a bare timeout.
import type { QmpEvent } from '../../src/protocol/qmp.ts'
import { QgaClient, QgaError } from './client.ts'
import { QgaGuest } from './guest.ts'

/** The port name qemu-guest-agent opens in the guest, and the QEMU device id vt gives it. */
export const QGA_PORT = 'org.qemu.guest_agent.0'
export const QGA_DEVICE_ID = 'vtqga'

export class AgentUnavailableError extends Error {
  override name = 'AgentUnavailableError'
  constructor(
    message: string,
    /** NO_AGENT: the guest never opened the port; AGENT_SILENT: it did, but nothing answered. */
    readonly code: 'NO_AGENT' | 'AGENT_SILENT',
  ) {
    super(message)
  }
}

export class AgentChannel {
  readonly client: QgaClient
  readonly guest: QgaGuest
  private ready = false
  private portOpen = false
  private waiting: Promise<void> | undefined

  constructor(
    socket: string,
    private readonly label: string,
  ) {
    this.client = new QgaClient(socket, label)
    this.guest = new QgaGuest(this.client, label)
  }

  get isReady(): boolean {
    return this.ready
  }

  connect(signal: AbortSignal, timeoutMs: number): Promise<void> {
    return this.client.connect(signal, timeoutMs)
  }

  /** Follows the guest opening and closing the agent's port (an agent restart closes and reopens it). */
  onQmpEvent(ev: QmpEvent): void {
    if (ev.event !== 'VSERPORT_CHANGE') return
    const d = (ev.data ?? {}) as { id?: string; open?: boolean }
    if (d.id !== QGA_DEVICE_ID) return
    this.portOpen = d.open === true
    if (!this.portOpen) this.ready = false
  }

  /** Resolves once the agent answers guest-sync; rejects after `timeoutMs` naming what is missing. */
  waitReady(timeoutMs: number): Promise<void> {
    if (this.ready) return Promise.resolve()
    this.waiting ??= this.poll(timeoutMs).finally(() => {
      this.waiting = undefined
    })
    return this.waiting
  }

  private async poll(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const left = deadline - Date.now()
      try {
        await this.client.sync(Math.max(1, Math.min(2000, left)))
        await this.client.execute('guest-ping', undefined, { timeoutMs: Math.max(1, Math.min(2000, left)) })
        this.ready = true
        return
      } catch (err) {
        if (!(err instanceof QgaError) || err.code !== 'timeout') throw err
      }
      if (Date.now() >= deadline) break
    }
    const s = (timeoutMs / 1000).toFixed(timeoutMs < 10_000 ? 1 : 0)
    if (this.portOpen) {
      throw new AgentUnavailableError(
        `${this.label}: guest agent not answering after ${s} s (the guest opened ${QGA_PORT} but ` +
          'qemu-guest-agent did not answer guest-sync-delimited; is it hung, or still starting?)',
        'AGENT_SILENT',
      )
    }
    throw new AgentUnavailableError(
      `${this.label}: no command channel: the guest runs no qemu-guest-agent (nothing opened the virtio-serial ` +
        `port ${QGA_PORT} within ${s} s). Install and enable qemu-guest-agent in the image, or boot one of ` +
        "vt's images (image: 'tiny' or 'debian')",
      'NO_AGENT',
    )
  }

  close(reason: string): void {
    this.ready = false
    this.client.close(reason)
  }
}
