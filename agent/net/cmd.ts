// Runs the host's network tools (ip, nft, tc) without a shell: every value is one argv element. A failure
// names the command and quotes the tool's own message, which is what says what the kernel lacks.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'

const execFileP = promisify(execFile)

export async function tool(cmd: 'ip' | 'nft' | 'tc' | 'bridge', args: string[], input?: string): Promise<string> {
  try {
    if (input === undefined) return (await execFileP(cmd, args, { timeout: 15_000 })).stdout
    return await new Promise<string>((resolve, reject) => {
      const child = execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) =>
        err ? reject(new ToolFailure(err, stderr)) : resolve(stdout),
      )
      child.stdin?.end(input)
    })
  } catch (e) {
    const err =
      e instanceof ToolFailure
        ? e
        : { stderr: (e as { stderr?: string }).stderr, error: e as { code?: unknown; message: string } }
    if (err.error.code === 'ENOENT') {
      throw new VtError(ErrorNames.notFound, `the ${cmd} tool is not installed on this host`, { code: 'MISSING_TOOL' })
    }
    const why = (err.stderr || err.error.message).trim().split('\n').slice(0, 4).join(' ')
    throw new VtError(ErrorNames.internal, `${cmd} ${args.join(' ')} failed: ${why}`, { code: 'NET_TOOL' })
  }
}

/** A tool's failure with its stderr (execFile's callback gets them apart). */
class ToolFailure {
  constructor(
    readonly error: { code?: unknown; message: string },
    readonly stderr: string,
  ) {}
}

export const ipCmd = (...args: string[]) => tool('ip', args)

/** The interface this host uses to reach `address` (from the routing table). */
export async function routeDevice(address: string): Promise<{ dev: string; src?: string }> {
  const out = await ipCmd('-j', 'route', 'get', address)
  const [r] = JSON.parse(out) as { dev?: string; prefsrc?: string }[]
  if (!r?.dev) throw new VtError(ErrorNames.notFound, `no route from this host to ${address}`)
  return { dev: r.dev, src: r.prefsrc }
}

export async function linkExists(name: string): Promise<boolean> {
  try {
    await ipCmd('link', 'show', 'dev', name)
    return true
  } catch {
    return false
  }
}
