// `vt setup`: installs the Debian packages `vt doctor` finds missing (apt-get, when root; otherwise prints the
// exact commands), then builds the tiny image so the first test does not wait for it. The packages come from
// src/cli/debian-packages.txt, the list .ci/run installs too; in a checkout of vt that includes what vt's own
// tests need, so the README's `npm ci && npx vt setup` prepares both `npx vt test` and `npm test`.
import type { Command } from 'commander'
import type { CliCommand } from './types.ts'

const setup: CliCommand = {
  name: 'setup',
  register(program: Command) {
    program
      .command('setup')
      .description('install missing Debian packages (as root) and build the tiny guest image')
      .option('--tests', "also install what vt's own tests need (default in a checkout of vt)")
      .option('--no-tests', "do not install what vt's own tests need")
      .option('--no-image', 'do not build the tiny image')
      .option('--dry-run', 'print what would be done')
      .action(async (opts: { tests?: boolean; image: boolean; dryRun?: boolean }) => {
        const { spawnSync } = await import('node:child_process')
        const { runChecks } = await import('./doctor.ts')
        const checks = await runChecks({ probe: false, tests: opts.tests })
        const packages = [...new Set(checks.filter(c => !c.ok).flatMap(c => c.packages ?? []))]
        const root = process.getuid?.() === 0
        if (packages.length === 0) {
          process.stdout.write('all required Debian packages are installed\n')
        } else {
          const steps = [['update'], ['install', '-y', '--no-install-recommends', ...packages]]
          const text = (args: string[]) => `${root ? '' : 'sudo '}apt-get ${args.join(' ')}`
          if (!root || opts.dryRun) {
            const head = opts.dryRun ? 'would run' : 'not root: run this yourself'
            process.stdout.write(`${head}:\n${steps.map(s => `  ${text(s)}\n`).join('')}`)
            if (!root && !opts.dryRun) process.exitCode = 1
          } else {
            for (const args of steps) {
              process.stdout.write(`running: ${text(args)}\n`)
              const r = spawnSync('apt-get', args, {
                stdio: 'inherit',
                env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
              })
              if (r.status !== 0) {
                process.stderr.write(`${text(args)} failed (exit ${r.status ?? r.error?.message})\n`)
                process.exitCode = 1
                return
              }
            }
          }
        }
        if (opts.image && !opts.dryRun) {
          const { ensureImage } = await import('../../../agent/image/index.ts')
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
