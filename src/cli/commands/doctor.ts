// `vt doctor`: what this machine is missing to run VMs (QEMU, qemu-img, accelerators, namespaces, the cache
// dir, the tiny image's packages), each with the fix. Exit code 1 when something required is missing.
import type { Command } from 'commander'
import type { CliCommand } from './types.ts'

export interface Check {
  name: string
  ok: boolean
  /** Missing but not required (e.g. KVM, nftables). */
  optional?: boolean
  detail: string
  fix?: string
  /** Debian packages that provide it, for `vt setup`. */
  packages?: string[]
}

export interface CheckOptions {
  probe?: boolean
  log?: (line: string) => void
  /** Check the packages vt's own tests need too (default: in a checkout of vt). */
  tests?: boolean
}

export async function runChecks(options: CheckOptions = {}): Promise<Check[]> {
  const { execFileSync } = await import('node:child_process')
  const { accessSync, constants, existsSync, mkdirSync, statfsSync } = await import('node:fs')
  const { cacheDir } = await import('../../../agent/image/cache.ts')
  const out = (cmd: string, args: string[]): string | undefined => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20_000 })
    } catch {
      return undefined
    }
  }
  const which = (cmd: string) => out('sh', ['-c', `command -v ${cmd}`])?.trim()
  const root = process.getuid?.() === 0
  const checks: Check[] = []

  // One check per package of the shared list (src/cli/debian-packages.txt), in its order.
  const { debianPackages, isVtCheckout } = await import('../debianPackages.ts')
  const tests = options.tests ?? isVtCheckout()
  const found = new Map<string, string | undefined>()
  for (const p of debianPackages().filter(p => tests || p.need !== 'tests')) {
    const cmd = p.commands[0]
    // A package of libraries or plugins ('-': no command of its own) is checked in dpkg's database.
    const path =
      cmd === '-'
        ? out('dpkg-query', ['-W', `-f=${'$'}{db:Status-Status}`, p.name]) === 'installed'
          ? `installed (${p.name})`
          : undefined
        : which(cmd)
    found.set(cmd, path)
    const version = path && cmd.startsWith('qemu') ? out(cmd, ['--version'])?.split('\n')[0] : undefined
    checks.push({
      name: cmd === '-' ? p.name : cmd,
      ok: !!path,
      optional: p.need !== 'vms',
      detail: path ? (version ?? path) : `not found (${p.need === 'tests' ? "vt's own tests: " : ''}${p.why})`,
      fix: `install the Debian package ${p.name}`,
      packages: [p.name],
    })
  }
  const qemu = found.get('qemu-system-x86_64')
  const dpkg = which('dpkg-deb') && which('apt-get')
  checks.push({
    name: 'dpkg-deb, apt-get',
    ok: !!dpkg,
    detail: dpkg ? 'present (the tiny image is built from Debian packages)' : 'not found',
    fix: 'the tiny image is built from Debian packages: run vt on Debian 12 or later',
  })

  // Accelerators: TCG whenever QEMU exists; KVM only if a probe boot works.
  if (qemu) {
    checks.push({ name: 'accelerator tcg', ok: true, detail: 'available' })
    if (options.probe === false) {
      checks.push({ name: 'accelerator kvm', ok: false, optional: true, detail: 'not probed (--no-probe)' })
    } else {
      options.log?.('probing KVM with a boot of the tiny guest (cached per machine boot)...')
      try {
        const { probeAccel } = await import('../../../agent/vm/accel.ts')
        const p = await probeAccel()
        checks.push({ name: 'accelerator kvm', ok: p.kvm, optional: true, detail: p.reason })
      } catch (err) {
        checks.push({
          name: 'accelerator kvm',
          ok: false,
          optional: true,
          detail: `probe failed: ${(err as Error).message}`,
        })
      }
    }
  }

  // Network namespaces (embedded clusters with isolation, network tests).
  const ip = found.get('ip')
  const netns = root && !!ip && existsSync('/proc/self/ns/net')
  checks.push({
    name: 'network namespaces',
    ok: netns,
    optional: true,
    detail: netns ? 'available (running as root)' : root ? 'unavailable' : 'need root (vt runs without them)',
  })
  const tun = existsSync('/dev/net/tun')
  checks.push({ name: '/dev/net/tun', ok: tun, optional: true, detail: tun ? 'present (tap NICs)' : 'missing' })

  // Cache dir: writable and with room for images.
  const dir = cacheDir()
  try {
    mkdirSync(dir, { recursive: true })
    accessSync(dir, constants.W_OK)
    const fs = statfsSync(dir)
    const freeGiB = (fs.bavail * fs.bsize) / 1024 ** 3
    checks.push({
      name: 'cache dir',
      ok: freeGiB > 0.5,
      detail: `${dir} (${freeGiB.toFixed(1)} GiB free)`,
      fix: 'free some space or set VT_CACHE_DIR to a roomier place',
    })
  } catch (err) {
    checks.push({
      name: 'cache dir',
      ok: false,
      detail: `${dir}: ${(err as Error).message}`,
      fix: 'set VT_CACHE_DIR to a writable directory',
    })
  }
  const kernelPkg = out('apt-cache', ['policy', 'linux-image-cloud-amd64'])
  const hasKernel = !!kernelPkg && !/Candidate: \(none\)/.test(kernelPkg) && /Candidate:/.test(kernelPkg)
  checks.push({
    name: 'tiny image sources',
    ok: hasKernel,
    detail: hasKernel
      ? 'linux-image-cloud-amd64 and busybox-static are available from apt'
      : 'apt knows no linux-image-cloud-amd64',
    fix: 'run `apt-get update` as root (needs a Debian apt source)',
  })
  return checks
}

export function formatChecks(checks: Check[], color = process.stdout.isTTY): string {
  const paint = (code: number, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s)
  return checks
    .map(c => {
      const mark = c.ok ? paint(32, '✓') : c.optional ? paint(33, '-') : paint(31, '✗')
      const fix = !c.ok && c.fix ? `\n    fix: ${c.fix}` : ''
      return `${mark} ${c.name.padEnd(22)} ${c.detail}${fix}`
    })
    .join('\n')
}

const doctor: CliCommand = {
  name: 'doctor',
  register(program: Command) {
    program
      .command('doctor')
      .description('check what this machine needs to run VMs (QEMU, accelerators, namespaces, cache dir)')
      .option('--no-probe', 'skip the KVM probe boot')
      .option('--json', 'print the checks as JSON')
      .action(async (opts: { probe: boolean; json?: boolean }) => {
        const checks = await runChecks({ probe: opts.probe, log: l => !opts.json && process.stderr.write(`${l}\n`) })
        if (opts.json) process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`)
        else {
          process.stdout.write(`${formatChecks(checks)}\n`)
          const missing = checks.filter(c => !c.ok && !c.optional)
          process.stdout.write(
            missing.length
              ? `\n${missing.length} required thing(s) missing: run \`vt setup\`\n`
              : '\nready to run VMs\n',
          )
        }
        if (checks.some(c => !c.ok && !c.optional)) process.exitCode = 1
      })
  },
}

export default doctor
