// Finds the Debian packages the tiny image is built from: a .deb already in apt's cache or in ours, else
// `apt-get download` into ours (works without root). Picks the newest version found.
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ensureDir } from './cache.ts'

const run = promisify(execFile)

const APT_ARCHIVES = '/var/cache/apt/archives'

function newest(dirs: string[], re: RegExp): string | undefined {
  const found: string[] = []
  for (const dir of dirs) {
    if (!existsSync(dir)) continue
    for (const f of readdirSync(dir)) if (re.test(f)) found.push(join(dir, f))
  }
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1)
  found.sort((a, b) => base(a).localeCompare(base(b), 'en', { numeric: true }))
  return found.at(-1)
}

async function aptDownload(pkg: string, into: string, progress: (msg: string) => void): Promise<void> {
  progress(`downloading ${pkg} with apt-get download`)
  try {
    await run('apt-get', ['download', pkg], { cwd: into, timeout: 300_000 })
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(
      `could not download the Debian package ${pkg}: ${(e.stderr || e.message).trim()}\n` +
        `Fix: run \`apt-get update\` (as root), or place ${pkg}_*.deb in ${into} or ${APT_ARCHIVES}`,
    )
  }
}

/** The kernel package (linux-image-<abi>-cloud-amd64) .deb. */
export async function kernelDeb(debDir: string, progress: (msg: string) => void): Promise<string> {
  const re = /^linux-image-\d[\w.+-]*-cloud-amd64_.*_amd64\.deb$/
  const local = newest([APT_ARCHIVES, debDir], re)
  if (local) return local
  ensureDir(debDir)
  let pkg: string | undefined
  try {
    const { stdout } = await run('apt-cache', ['depends', 'linux-image-cloud-amd64'])
    pkg = /Depends:\s*(linux-image-\S+-cloud-amd64)/.exec(stdout)?.[1]
  } catch {}
  if (!pkg) {
    throw new Error(
      'cannot find the Debian package linux-image-cloud-amd64 (apt-cache knows no such package). ' +
        'The tiny image needs a Debian (bookworm or later) apt source; run `vt doctor`.',
    )
  }
  await aptDownload(pkg, debDir, progress)
  const got = newest([debDir], re)
  if (!got) throw new Error(`apt-get download ${pkg} finished but no .deb appeared in ${debDir}`)
  return got
}

/** The busybox-static .deb. */
export async function busyboxDeb(debDir: string, progress: (msg: string) => void): Promise<string> {
  const re = /^busybox-static_.*_amd64\.deb$/
  const local = newest([APT_ARCHIVES, debDir], re)
  if (local) return local
  ensureDir(debDir)
  await aptDownload('busybox-static', debDir, progress)
  const got = newest([debDir], re)
  if (!got) throw new Error(`apt-get download busybox-static finished but no .deb appeared in ${debDir}`)
  return got
}

/** Extracts the given members (tar wildcards) of a .deb into `dir`. */
export async function extractDeb(deb: string, dir: string, members: string[]): Promise<void> {
  ensureDir(dir)
  // dpkg-deb --fsys-tarfile | tar -x, without a shell: pipe the two processes ourselves.
  const { spawn } = await import('node:child_process')
  await new Promise<void>((resolve, reject) => {
    const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] })
    const tar = spawn('tar', ['-x', '-C', dir, '--wildcards', ...members], { stdio: ['pipe', 'ignore', 'pipe'] })
    let err = ''
    dpkg.stderr.on('data', d => {
      err += d
    })
    tar.stderr.on('data', d => {
      err += d
    })
    dpkg.stdout.pipe(tar.stdin)
    let left = 2
    let failed = false
    const done = (what: string) => (code: number | null) => {
      if (code !== 0 && !failed) {
        failed = true
        reject(new Error(`extracting ${deb}: ${what} exited with ${code}: ${err.trim()}`))
      }
      if (--left === 0 && !failed) resolve()
    }
    dpkg.on('error', e => reject(new Error(`cannot run dpkg-deb (is this Debian?): ${e.message}`)))
    tar.on('error', e => reject(new Error(`cannot run tar: ${e.message}`)))
    dpkg.on('close', done('dpkg-deb'))
    tar.on('close', done('tar'))
  })
}
