// Files on the host, confined to the agent's allowed roots: a path that resolves (through `..` or symlinks)
// outside every root is refused. Bulk data moves in binary stream frames (see wire.ts): `put` opens a
// stream the controller then writes chunks to and `commit`s; `read` sends chunks on a caller-chosen stream id
// and resolves after the last one. Files and directories a session creates are removed with the session
// unless created with `keep: true` (files that existed before are never removed that way).
import { z } from 'zod'
import { absolutePath, bytes, call, defineService } from './contract.ts'

export interface FileStat {
  path: string
  type: 'file' | 'directory' | 'symlink' | 'other'
  size: number
  mode: number
  mtimeMs: number
}

const streamId = z.number().int().min(1).max(0xffffffff)
const mode = z.number().int().min(0).max(0o7777)

export const files = defineService('files', {
  stat: call(absolutePath).returns<FileStat | null>(),
  list: call(absolutePath).returns<FileStat[]>(),
  /** Creates the directory and its parents. */
  mkdir: call(
    absolutePath,
    z.strictObject({ mode: mode.optional(), keep: z.boolean().optional() }).optional(),
  ).returns<void>(),
  remove: call(absolutePath, z.strictObject({ recursive: z.boolean().optional() }).optional()).returns<boolean>(),
  /** Small files in one call. */
  write: call(
    absolutePath,
    bytes,
    z.strictObject({ mode: mode.optional(), mkdirs: z.boolean().optional(), keep: z.boolean().optional() }).optional(),
  ).returns<FileStat>(),
  /** A regular file of at most maxBytes; devices and FIFOs only with `special: true` (still bounded). */
  readSmall: call(
    absolutePath,
    z.strictObject({ maxBytes: z.number().int().min(0).optional(), special: z.boolean().optional() }).optional(),
  ).returns<Uint8Array>(),
  /** Opens a write stream: chunks on `stream` follow, then `commit` (atomic rename) or `abort`. */
  openWrite: call(
    absolutePath,
    z.strictObject({
      stream: streamId,
      mode: mode.optional(),
      mkdirs: z.boolean().optional(),
      keep: z.boolean().optional(),
    }),
  ).returns<void>(),
  commit: call(streamId).returns<FileStat>(),
  abort: call(streamId).returns<void>(),
  /** Sends the file's bytes as chunks on `stream`; resolves with its size after the last chunk. */
  read: call(absolutePath, z.strictObject({ stream: streamId })).returns<{ size: number }>(),
})
