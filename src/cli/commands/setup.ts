// `vt setup`: installs the Debian packages `vt doctor` finds missing (apt-get, when root; otherwise prints the
// exact command), then builds the tiny image so the first test does not wait for it.
import type { Command } from 'commander'
import type { CliCommand } from './types.ts'

const setup: CliCommand = {
  name: 'setup',
  register(program: Command) {
    program
      .command('setup')
      .description('install missing Debian packages (as root) and build the tiny guest image')
      .option('--optional', 'also install optional packages (nftables, util-linux)')
      .option('--no-image', 'do not build the tiny image')
      .option('--dry-run', 'print what would be done')
      .action(async (opts: { optional?: boolean; image: boolean; dryRun?: boolean }) => {
        const { spawnSync } = await import('node:child_process')
        const { runChecks } = await import('./doctor.ts')
        const checks = await runChecks({ probe: false })
        const packages = [
          ...new Set(checks.filter(c => !c.ok && (opts.optional || !c.optional)).flatMap(c => c.packages ?? [])),
        ]
        const root = process.getuid?.() === 0
        if (packages.length === 0) {
          process.stdout.write('all required Debian packages are installed\n')
        } else {
          const args = ['install', '-y', '--no-install-recommends', ...packages]
          const command = `apt-get ${args.join(' ')}`
          if (!root || opts.dryRun) {
            process.stdout.write(
              `${opts.dryRun ? 'would run' : 'not root: run this yourself'}:\n  ${root ? '' : 'sudo '}${command}\n`,
            )
            if (!root && !opts.dryRun) process.exitCode = 1
          } else {
            process.stdout.write(`running: ${command}\n`)
            const r = spawnSync('apt-get', args, {
              stdio: 'inherit',
              env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
            })
            if (r.status !== 0) {
              process.stderr.write(`apt-get failed (exit ${r.status}); try \`apt-get update\` first\n`)
              process.exitCode = 1
              return
            }
          }
        }
        if (opts.image && !opts.dryRun) {
          const { ensureImage } = await import('../../image/index.ts')
          try {
            const img = await ensureImage('tiny', { progress: m => process.stdout.write(`image: ${m}\n`) })
            process.stdout.write(`tiny image: ${img.dir}\n`)
          } catch (err) {
            process.stderr.write(`building the tiny image failed: ${(err as Error).message}\n`)
            process.exitCode = 1
          }
        }
      })
  },
}

export default setup
