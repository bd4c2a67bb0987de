// `vt init [dir]`: a ready project in an empty (or new) directory — package.json with scripts, vt.config.ts with a
// two-host project, one example spec and .gitignore — like `npm init playwright`. Never overwrites a file.
import type { Command } from 'commander'
import type { CliCommand } from './types.ts'

const init: CliCommand = {
  name: 'init',
  register(program: Command) {
    program
      .command('init')
      .description('create a vt project (package.json, vt.config.ts, an example spec) in a directory')
      .argument('[dir]', 'the project directory (created if missing)', '.')
      .action(async (dir: string) => {
        const { existsSync, mkdirSync, readFileSync, writeFileSync } = await import('node:fs')
        const path = await import('node:path')
        const { CliError } = await import('../errors.ts')
        const { initFiles } = await import('../init/template.ts')
        const root = path.resolve(dir)
        const vtPackage = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'))
        const name =
          path
            .basename(root)
            .toLowerCase()
            .replace(/[^a-z0-9._-]+/g, '-')
            .replace(/^[._-]+/, '') || 'vt-project'
        const files = initFiles({ name, vtPackage: vtPackage.name })
        const existing = Object.keys(files).filter(f => existsSync(path.join(root, f)))
        if (existing.length)
          throw new CliError(
            `vt init: ${root} already has ${existing.join(', ')}; run it in an empty directory (nothing was written)`,
          )
        for (const [file, text] of Object.entries(files)) {
          mkdirSync(path.dirname(path.join(root, file)), { recursive: true })
          writeFileSync(path.join(root, file), text, { flag: 'wx' })
        }
        const cd = path.relative(process.cwd(), root)
        process.stdout.write(
          `Created a vt project in ${root}:\n${Object.keys(files)
            .map(f => `  ${f}\n`)
            .join('')}\nNext:\n${cd ? `  cd ${cd}\n` : ''}` +
            `  npm install --save-dev ${vtPackage.name}   # or the tarball from \`npm pack\` in a checkout of vt\n` +
            '  npx vt setup                            # once per machine: QEMU & co. and the tiny guest image\n' +
            '  npm test                                # runs tests/example.vt.ts on two embedded hosts\n',
        )
      })
  },
}

export default init
