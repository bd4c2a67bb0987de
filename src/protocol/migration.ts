// The `migration` service: the host-local steps of a live migration that QMP cannot do by itself.
//   freePort          a TCP port free on one of this host's addresses (the NBD export of a storage copy)
//   checkMemoryDump   checks a memtest RAM dump (written by QMP pmemsave on this host) where it lies, so
//                     hundreds of MiB never cross the wire; removes it afterwards unless told to keep it
// Dumps are only read when named vt-memdump-*.bin inside the agent's state dir or allowed roots.
import { z } from 'zod'
import { absolutePath, call, defineService } from './contract.ts'
import type { IntegrityReport } from './memtest.ts'

const pageAligned = z
  .number()
  .int()
  .min(0)
  .max(2 ** 40)
  .refine(n => n % 4096 === 0, { message: 'must be a multiple of 4096' })

export const migration = defineService('migration', {
  freePort: call(z.strictObject({ address: z.string().min(1).max(255) })).returns<number>(),
  /** Opens (and closes) a TCP connection from this host to address:port: is the path there open now? */
  probe: call(
    z.strictObject({
      address: z.string().min(1).max(255),
      port: z.number().int().min(1).max(65535),
      timeoutMs: z.number().int().min(1).max(60_000),
    }),
  ).returns<void>(),
  checkMemoryDump: call(
    z.strictObject({
      path: absolutePath.refine(p => /\/vt-memdump-[A-Za-z0-9_.-]+\.bin$/.test(p), {
        message: 'must name a vt-memdump-*.bin file',
      }),
      start: pageAligned,
      size: pageAligned.refine(n => n > 0, { message: 'must be positive' }),
      keep: z.boolean().optional(),
    }),
  ).returns<IntegrityReport>(),
})

export type { IntegrityReport }
