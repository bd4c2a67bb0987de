// The `console` service: an interactive terminal, for `vt console` while a `vt test --debug` run is paused.
// Two kinds of target: a shell in a running VM (the tiny guest's shell on its virtio console, /dev/hvc0) and
// a shell on the host itself (a pseudo-terminal in the agent's network namespace). The bytes travel on a binary
// stream the caller picks (wire.ts): the agent sends the terminal's output on it and reads what the user types
// from it. A VM belongs to another session (the paused run's): naming it takes that session's id AND secret.
import { z } from 'zod'
import { call, defineService, event } from './contract.ts'

const streamId = z.number().int().min(1).max(0xffffffff)
const size = z.number().int().min(1).max(10_000)
/** The session that owns the VMs (the paused run's): id and secret, as its welcome gave them. */
const owner = z.strictObject({ session: z.string().min(1).max(64), secret: z.string().min(1).max(128) })

export const consoleOpenRequest = z.strictObject({
  target: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('vm'), name: z.string().min(1).max(64), owner }),
    /** A shell on the host; `owner` makes it start in that session's directory (the VMs' files). */
    z.strictObject({ kind: z.literal('host'), owner: owner.optional() }),
  ]),
  stream: streamId,
  cols: size,
  rows: size,
  /** The user's TERM (host shells get it; the tiny guest's busybox needs none). */
  term: z
    .string()
    .regex(/^[A-Za-z0-9._+-]{1,64}$/)
    .optional(),
})

export type ConsoleOpenRequest = z.input<typeof consoleOpenRequest>

export interface ConsoleOpened {
  /** What the terminal is attached to, for the banner: "VM web on host-a", "host host-a". */
  label: string
}

export interface ConsoleClosedEvent {
  stream: number
  /** Why: the shell exited (with its code), the VM exited, another `vt console` took the VM's console over. */
  reason: string
  exitCode?: number
}

export const console = defineService(
  'console',
  {
    open: call(consoleOpenRequest).returns<ConsoleOpened>(),
    /** The user's terminal changed size. */
    resize: call(streamId, size, size).returns<void>(),
    /** Detaches (a VM's shell keeps running for the next attach) or ends the host shell. */
    close: call(streamId).returns<void>(),
  },
  { closed: event<ConsoleClosedEvent>() },
)
