// qemu-img, asynchronously (a 10 GiB convert must not stall the agent's event loop), with its progress
// (`-p` prints "(12.34/100%)" on stdout) read as it runs, and its own words in the error when it fails.
import { spawn } from 'node:child_process'
import { VtError } from '../../src/protocol/errors.ts'

export interface QemuImgOptions {
  /** Percent done (0 to 100), when the command was given `-p`. */
  onPercent?: (percent: number) => void
  signal?: AbortSignal
}

export class QemuImgError extends VtError {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly exitCode: number | null,
    readonly stdout = '',
  ) {
    super('QemuImgError', `qemu-img ${args.join(' ')} failed: ${stderr.trim() || `exit code ${exitCode}`}`, {
      code: 'QEMU_IMG',
    })
  }
}

export function qemuImg(args: string[], options: QemuImgOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-img', args, { stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (text: string) => {
      if (options.onPercent) {
        for (const m of text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)) options.onPercent(Number(m[1]))
      } else out += text
    })
    child.stderr.on('data', (text: string) => {
      if (err.length < 64 * 1024) err += text
    })
    child.on('error', e =>
      reject(new VtError('QemuImgError', `qemu-img could not run: ${e.message}`, { code: 'QEMU_IMG', cause: e })),
    )
    child.on('close', code => (code === 0 ? resolve(out) : reject(new QemuImgError(args, err, code, out))))
  })
}

/** `qemu-img info --output=json` of one image, or of its whole backing chain with `chain`. */
export interface QemuImgInfo {
  filename: string
  format: string
  'virtual-size': number
  'actual-size'?: number
  'backing-filename'?: string
  'full-backing-filename'?: string
  'backing-filename-format'?: string
  snapshots?: { name: string; 'date-sec': number; 'vm-state-size': number }[]
}

export async function imageInfo(filename: string): Promise<QemuImgInfo> {
  // -U: also while a running VM holds the image's write lock (info only reads the header).
  return JSON.parse(await qemuImg(['info', '--output=json', '-U', filename])) as QemuImgInfo
}

export async function backingChain(filename: string): Promise<QemuImgInfo[]> {
  return JSON.parse(await qemuImg(['info', '--output=json', '-U', '--backing-chain', filename])) as QemuImgInfo[]
}
