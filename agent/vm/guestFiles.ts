// Files on the tiny guest, over its command channel (guests with qemu-guest-agent use guest-file-*, see
// agent/qga/guest.ts): reading is `cat` (the channel's replies are length-prefixed, so any bytes pass);
// writing sends base64 chunks that busybox decodes, into a temporary file renamed into place at the end.
import { GuestError, type GuestResult, shellQuote } from './guest.ts'

type Exec = (command: string, opts: { timeoutMs?: number }) => Promise<GuestResult>

/** Raw bytes per command: 96 KiB is 128 KiB of base64, half the channel's command limit. */
const CHUNK = 96 * 1024

function failure(what: string, r: GuestResult): GuestError {
  const err = r.stderr.toString('utf8').trim()
  return new GuestError(`${what} failed (exit code ${r.exitCode})${err ? `: ${err}` : ''}`)
}

export async function vtReadFile(
  exec: Exec,
  path: string,
  opts: { maxBytes?: number; timeoutMs?: number } = {},
): Promise<Buffer> {
  const q = shellQuote(path)
  const max = opts.maxBytes ?? 64 * 1024 * 1024
  const r = await exec(`[ -f ${q} ] || { echo "not a regular file" >&2; exit 1; }; cat -- ${q}`, opts)
  if (r.exitCode !== 0) throw failure(`reading ${path} in the guest`, r)
  if (r.stdout.length > max) throw new GuestError(`${path} in the guest has more than ${max} bytes`)
  return r.stdout
}

export async function vtWriteFile(
  exec: Exec,
  path: string,
  data: Uint8Array,
  opts: { mode?: number; timeoutMs?: number } = {},
): Promise<void> {
  const q = shellQuote(path)
  const tmp = shellQuote(`${path}.vt-tmp`)
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  let at = 0
  do {
    const part = buf.subarray(at, at + CHUNK).toString('base64')
    const r = await exec(`printf %s '${part}' | base64 -d ${at === 0 ? '>' : '>>'} ${tmp}`, opts)
    if (r.exitCode !== 0) {
      await exec(`rm -f ${tmp}`, opts).catch(() => {})
      throw failure(`writing ${path} in the guest`, r)
    }
    at += CHUNK
  } while (at < buf.length)
  const chmod = opts.mode !== undefined ? `chmod ${opts.mode.toString(8)} ${tmp} && ` : ''
  const r = await exec(`${chmod}mv -f ${tmp} ${q}`, opts)
  if (r.exitCode !== 0) {
    await exec(`rm -f ${tmp}`, opts).catch(() => {})
    throw failure(`writing ${path} in the guest`, r)
  }
}
