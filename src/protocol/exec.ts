// Run a command to completion on the host: argv or a shell string, with env, cwd, stdin and a timeout.
// Output streams as events while it runs (when `stream` is set) and comes back whole in the result. On
// timeout or cancel the whole process tree is killed.
import { z } from 'zod'
import { absolutePath, bytes, call, defineService, envSchema, event, id } from './contract.ts'

export const execRequest = z
  .strictObject({
    /** Program and arguments, run without a shell. */
    argv: z
      .array(z.string().max(1 << 20))
      .min(1)
      .max(10_000)
      .optional(),
    /** A shell string, run with `/bin/sh -c`. */
    command: z
      .string()
      .min(1)
      .max(1 << 20)
      .optional(),
    /** Replaces the environment when `clearEnv`, else added to the agent's. */
    env: envSchema.optional(),
    clearEnv: z.boolean().optional(),
    cwd: absolutePath.optional(),
    /** Data written to stdin, then stdin is closed. Without it stdin is /dev/null. */
    stdin: bytes.optional(),
    /** Milliseconds until the process tree is killed (0: no limit). Default 10 minutes. */
    timeoutMs: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600_000)
      .optional(),
    /** Caller-chosen id: names the output events and lets `cancel` stop the run. Unique in the session. */
    id: id.optional(),
    /** Emit `output` events while running. */
    stream: z.boolean().optional(),
    /** Bytes of stdout and of stderr kept for the result (the rest still streams). Default 16 MiB. */
    maxBuffer: z
      .number()
      .int()
      .min(0)
      .max(512 * 1024 * 1024)
      .optional(),
  })
  .refine(r => (r.argv === undefined) !== (r.command === undefined), {
    message: 'give exactly one of "argv" and "command"',
  })

export type ExecRequest = z.input<typeof execRequest>

export interface ExecResult {
  /** Exit code, or null when killed by a signal. */
  exitCode: number | null
  signal: string | null
  stdout: Uint8Array
  stderr: Uint8Array
  /** Output beyond `maxBuffer` was dropped from the result. */
  truncated: boolean
  timedOut: boolean
  canceled: boolean
  durationMs: number
  pid: number
}

export interface ExecOutputEvent {
  id: string
  stream: 'stdout' | 'stderr'
  data: Uint8Array
}

export const exec = defineService(
  'exec',
  {
    run: call(execRequest).returns<ExecResult>(),
    /** Kills the process tree of a running `run` with that id; resolves false when none runs. */
    cancel: call(id).returns<boolean>(),
  },
  { output: event<ExecOutputEvent>() },
)
