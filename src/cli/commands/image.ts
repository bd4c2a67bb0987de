// `vt image build [name]`, `vt image list`, `vt image prune`: the guest images in the cache (VT_CACHE_DIR).
import type { Command } from 'commander'
import type { CliCommand } from './types.ts'

const image: CliCommand = {
  name: 'image',
  register(program: Command) {
    const cmd = program.command('image').description('build and list guest images (cached in VT_CACHE_DIR)')
    cmd
      .command('build')
      .description("build an image: tiny (vt's busybox guest) or debian (Debian 12 with qemu-guest-agent)")
      .argument('[name]', 'image name: tiny or debian', 'tiny')
      .option('--force', 'rebuild even when cached, and drop every cached memtest image')
      .action(async (name: string, opts: { force?: boolean }) => {
        const { ensureImage } = await import('../../../agent/image/index.ts')
        const { repairMemtestImages } = await import('../../../agent/memtest/image.ts')
        try {
          // Checks the cached entry (sizes and hashes) and rebuilds it when broken; --force rebuilds anyway.
          const img = await ensureImage(name, { force: opts.force, progress: m => process.stdout.write(`${m}\n`) })
          process.stdout.write(
            `${img.name}: kernel ${img.kernelVersion}\n  ${img.kernel}\n  ${img.initrd}\n  ${img.disk}\n`,
          )
          for (const line of repairMemtestImages({ force: opts.force }))
            process.stdout.write(`memtest image removed (rewritten when next used): ${line}\n`)
        } catch (err) {
          process.stderr.write(`vt image build: ${(err as Error).message}\n`)
          process.exitCode = 1
        }
      })
    cmd
      .command('list')
      .description('list cached images')
      .action(async () => {
        const { readdirSync, existsSync } = await import('node:fs')
        const { join } = await import('node:path')
        const { cacheDir, checkEntry, DEBIAN_FILES, TINY_FILES } = await import('../../../agent/image/index.ts')
        const dir = join(cacheDir(), 'images')
        const entries = existsSync(dir)
          ? readdirSync(dir).filter(d => /^(tiny|debian)-/.test(d) && !d.endsWith('.lock'))
          : []
        if (entries.length === 0) process.stdout.write(`no images in ${dir} (vt image build tiny)\n`)
        for (const e of entries) {
          const c = checkEntry(join(dir, e), e.startsWith('debian-') ? DEBIAN_FILES : TINY_FILES)
          if (c.ok) process.stdout.write(`${e}  kernel ${c.manifest.kernelVersion}  built ${c.manifest.builtAt}\n`)
          else process.stdout.write(`${e}  broken: ${c.problem} (vt image build repairs the current one)\n`)
        }
      })
    cmd
      .command('prune')
      .description('remove every cached image except the current tiny and debian ones')
      .action(async () => {
        const { readdirSync, rmSync } = await import('node:fs')
        const { join } = await import('node:path')
        const { cacheDir, debianEntryDir, ensureImage } = await import('../../../agent/image/index.ts')
        const keep = await ensureImage('tiny')
        const debian = debianEntryDir()
        const dir = join(cacheDir(), 'images')
        for (const e of readdirSync(dir)) {
          if (join(dir, e) === keep.dir || join(dir, e) === debian || e.endsWith('.lock')) continue
          rmSync(join(dir, e), { recursive: true, force: true })
          process.stdout.write(`removed ${e}\n`)
        }
      })
  },
}

export default image
