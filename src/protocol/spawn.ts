// Long-running processes: started in their own process group, output captured to log files in the session's
// directory, killed with the session unless they exit first.
import { z } from 'zod'
import { absolutePath, call, defineService, envSchema, event, id } from './contract.ts'

export const spawnRequest = z
  .strictObject({
    argv: z.array(z.string()).min(1).max(10_000).optional(),
    command: z.string().min(1).optional(),
    env: envSchema.optional(),
    clearEnv: z.boolean().optional(),
    cwd: absolutePath.optional(),
    /** A name for logs and listings. */
    name: z.string().max(200).optional(),
    /** Emit `output` events as well as writing the logs. */
    stream: z.boolean().optional(),
  })
  .refine(r => (r.argv === undefined) !== (r.command === undefined), {
    message: 'give exactly one of "argv" and "command"',
  })

export type SpawnRequest = z.input<typeof spawnRequest>

export interface ProcessInfo {
  id: string
  name: string
  pid: number
  running: boolean
  exitCode: number | null
  signal: string | null
  stdoutLog: string
  stderrLog: string
  startedAt: number
}

export interface SpawnExitEvent {
  id: string
  exitCode: number | null
  signal: string | null
}

export interface SpawnOutputEvent {
  id: string
  stream: 'stdout' | 'stderr'
  data: Uint8Array
}

export const spawn = defineService(
  'spawn',
  {
    start: call(spawnRequest).returns<ProcessInfo>(),
    list: call().returns<ProcessInfo[]>(),
    /** Sends a signal to the process group (default SIGTERM). */
    kill: call(
      id,
      z
        .string()
        .regex(/^SIG[A-Z0-9]+$/)
        .optional(),
    ).returns<boolean>(),
    /** Waits for exit; null when still running after `timeoutMs`. */
    wait: call(id, z.number().int().min(0).optional()).returns<ProcessInfo | null>(),
    /** A slice of a log file. */
    logs: call(
      id,
      z
        .strictObject({
          stream: z.enum(['stdout', 'stderr']).optional(),
          offset: z.number().int().min(0).optional(),
          maxBytes: z
            .number()
            .int()
            .min(0)
            .max(64 * 1024 * 1024)
            .optional(),
        })
        .optional(),
    ).returns<{ data: Uint8Array; offset: number; size: number }>(),
  },
  { exit: event<SpawnExitEvent>(), output: event<SpawnOutputEvent>() },
)
