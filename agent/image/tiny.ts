// The tiny guest: Debian's cloud kernel plus an initramfs of busybox-static, the virtio modules and our /init.
// Built locally from the .debs (never downloaded as an image), cached under a key that hashes every input.
import { execFile, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import { cacheDir, ensureDir, removeDeadBuilds, replaceDir, withLock } from './cache.ts'
import { type CpioEntry, writeCpio } from './cpio.ts'
import { busyboxDeb, extractDeb, kernelDeb } from './debs.ts'
import { VT_IDENTITY_BASE64 } from './identity/program.ts'
import { initScript, type ModuleGroups, vtSyncScript } from './init.ts'
import { checkEntry, digestFiles } from './verify.ts'

const run = promisify(execFile)

/** Bump when the recipe changes in a way the hash of init.ts/this file would not show (2: file digests). */
const RECIPE_VERSION = 2

/** What every guest image the agent builds offers the VM manager: a kernel, an initrd and a base disk. */
export interface BootImage {
  dir: string
  kernel: string
  initrd: string
  disk: string
  /** Kernel command line the image wants (the VM manager adds its own). */
  append: string
  kernelVersion: string
  key: string
  /** Smallest memory a VM of this image boots in, with room for its commands. */
  minMemoryMiB: number
}

export interface TinyImage extends BootImage {
  name: 'tiny'
  /** A 64 MiB empty qcow2 base for `disks: [{ image: 'tiny' }]`. */
  disk: string
}

export type Progress = (message: string) => void

/**
 * The kernel command line: serial console, quiet, and boot-time savings that matter under TCG.
 * no_timer_check: on a loaded host the kernel's IO-APIC timer check can fail and panic ("IO-APIC + timer
 * doesn't work"); cryptomgr.notests skips crypto self-tests (~0.3 s under TCG).
 */
export const TINY_APPEND = 'console=ttyS0 quiet no_timer_check cryptomgr.notests mitigations=off nokaslr'

/**
 * Measured: below ~76 MiB the kernel panics ("System is deadlocked on memory") or cannot even unpack itself
 * (no console output at all); 96 MiB leaves room for the guest's commands.
 */
export const TINY_MIN_MEMORY_MIB = 96

const WANTED = { core: ['virtio_pci'], console: ['virtio_console'], blk: ['virtio_blk'], net: ['virtio_net'] }

/** The files of a tiny cache entry, each recorded in its manifest with size and sha256. */
export const TINY_FILES = ['vmlinuz', 'initrd.cpio', 'disk.qcow2'] as const

/**
 * Returns the cached tiny image, building it first when missing. An entry that fails its check (see verify.ts:
 * a truncated or changed file, a missing or garbage manifest) is rebuilt; `force` rebuilds in any case.
 */
export async function ensureTiny(opts: { progress?: Progress; force?: boolean } = {}): Promise<TinyImage> {
  const progress = opts.progress ?? (() => {})
  const root = ensureDir(join(cacheDir(), 'images'))
  const debDir = join(cacheDir(), 'debs')
  const kdeb = await kernelDeb(debDir, progress)
  const bdeb = await busyboxDeb(debDir, progress)
  const key = recipeKey(kdeb, bdeb)
  const dir = join(root, `tiny-${key}`)
  const check = () => (existsSync(dir) ? checkEntry(dir, TINY_FILES) : undefined)
  if (!opts.force) {
    const c = check()
    if (c?.ok) return toImage(dir, c.manifest)
  }
  let broken: string | undefined
  try {
    return await withLock(
      join(root, `tiny-${key}.lock`),
      async () => {
        if (!opts.force) {
          const c = check()
          if (c?.ok) return toImage(dir, c.manifest)
          if (c) {
            broken = c.problem
            progress(`the cached tiny image ${dir} is broken: ${c.problem}; rebuilding it`)
          }
        }
        const t0 = Date.now()
        progress(`building the tiny image from ${basename(kdeb)} and ${basename(bdeb)}`)
        removeDeadBuilds(root, 'tiny')
        const tmp = join(root, `.tmp-tiny-${key}-${process.pid}`)
        rmSync(tmp, { recursive: true, force: true })
        try {
          await build(tmp, kdeb, bdeb, key, progress)
          replaceDir(tmp, dir, join(root, `.old-tiny-${key}-${process.pid}`))
        } finally {
          rmSync(tmp, { recursive: true, force: true })
        }
        const c = checkEntry(dir, TINY_FILES)
        if (!c.ok) throw new Error(`the freshly built tiny image ${dir} fails its own check: ${c.problem}`)
        progress(`tiny image ${broken ? 'repaired' : 'ready'} in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${dir}`)
        return toImage(dir, c.manifest)
      },
      { onWait: owner => progress(`waiting for another build of the tiny image (${owner})`) },
    )
  } catch (err) {
    if (!broken) throw err
    throw new Error(
      `the cached tiny image ${dir} is broken (${broken}) and rebuilding it failed: ${(err as Error).message}\n` +
        `Fix: remove ${dir} and run \`vt image build\``,
    )
  }
}

const fileHashes = new Map<string, string>()

/** sha256 of a file, remembered per (path, size, mtime) so that each process reads a .deb once. */
function fileHash(path: string): string {
  const st = statSync(path)
  const memo = `${path}:${st.size}:${st.mtimeMs}`
  let h = fileHashes.get(memo)
  if (!h) {
    h = createHash('sha256').update(readFileSync(path)).digest('hex')
    fileHashes.set(memo, h)
  }
  return h
}

/** The cache key: a hash of the packages' contents, the recipe version, /init and the module list. */
function recipeKey(kdeb: string, bdeb: string): string {
  const h = createHash('sha256')
  h.update(`v${RECIPE_VERSION}\n${fileHash(kdeb)}\n${fileHash(bdeb)}\n`)
  h.update(initScript({ core: ['x'], console: ['y'], blk: ['z'], net: ['w'] }))
  h.update(vtSyncScript())
  h.update(VT_IDENTITY_BASE64)
  h.update(JSON.stringify(WANTED))
  return h.digest('hex').slice(0, 16)
}

function toImage(dir: string, m: Record<string, unknown>): TinyImage {
  return {
    ...(m as Pick<TinyImage, 'kernelVersion' | 'key'>),
    name: 'tiny',
    append: TINY_APPEND,
    minMemoryMiB: TINY_MIN_MEMORY_MIB,
    dir,
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.cpio'),
    disk: join(dir, 'disk.qcow2'),
  }
}

/** `depends=` from a .ko's .modinfo section. */
function moduleDepends(ko: Buffer): string[] {
  const tag = Buffer.from('\0depends=')
  const at = ko.indexOf(tag)
  if (at < 0) return []
  const end = ko.indexOf(0, at + tag.length)
  const value = ko.subarray(at + tag.length, end).toString('latin1')
  return value ? value.split(',').map(s => s.replace(/-/g, '_')) : []
}

async function build(tmp: string, kdeb: string, bdeb: string, key: string, progress: Progress): Promise<void> {
  const x = ensureDir(join(tmp, 'x'))
  progress('extracting the kernel package')
  await extractDeb(kdeb, x, ['./boot/vmlinuz-*', './lib/modules/*/kernel/drivers/*', './lib/modules/*/kernel/net/*'])
  progress('extracting busybox-static')
  await extractDeb(bdeb, x, ['./bin/busybox'])
  const vmlinuz = readdirSync(join(x, 'boot')).find(f => f.startsWith('vmlinuz-'))
  if (!vmlinuz) throw new Error(`${kdeb} contains no /boot/vmlinuz-*`)
  const kernelVersion = vmlinuz.slice('vmlinuz-'.length)

  // Index the modules by name, then take the dependency closure of what we want, in load order.
  const modIndex = new Map<string, string>()
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name))
      else if (e.name.endsWith('.ko')) modIndex.set(e.name.slice(0, -3).replace(/-/g, '_'), join(d, e.name))
    }
  }
  walk(join(x, 'lib/modules', kernelVersion))
  const loaded = new Set<string>()
  const contents = new Map<string, Buffer>()
  const closure = (names: string[]): string[] => {
    const order: string[] = []
    const visit = (name: string, chain: string[]) => {
      if (loaded.has(name)) return
      if (chain.includes(name)) throw new Error(`module dependency cycle: ${[...chain, name].join(' -> ')}`)
      const path = modIndex.get(name)
      if (!path) throw new Error(`kernel ${kernelVersion} has no module ${name} (needed by ${chain.at(-1) ?? 'vt'})`)
      const ko = readFileSync(path)
      for (const dep of moduleDepends(ko)) visit(dep, [...chain, name])
      loaded.add(name)
      contents.set(name, ko)
      order.push(name)
    }
    for (const n of names) visit(n, [])
    return order
  }
  const groups: ModuleGroups = {
    core: closure(WANTED.core),
    console: closure(WANTED.console),
    blk: closure(WANTED.blk),
    net: closure(WANTED.net),
  }
  progress(`modules: ${[...groups.core, ...groups.console, ...groups.blk, ...groups.net].join(' ')}`)

  const busybox = readFileSync(join(x, 'bin/busybox'))
  const { stdout: list } = await run(join(x, 'bin/busybox'), ['--list'])
  const applets = list.split('\n').filter(a => a && a !== 'busybox' && /^[\w.[-]+$/.test(a))

  const entries: CpioEntry[] = []
  for (const d of ['bin', 'dev', 'etc', 'lib', 'lib/modules', 'proc', 'root', 'run', 'sys', 'tmp']) {
    entries.push({ path: d, type: 'dir', mode: d === 'tmp' ? 0o1777 : 0o755 })
  }
  entries.push({ path: 'dev/console', type: 'chardev', major: 5, minor: 1 })
  entries.push({ path: 'bin/busybox', type: 'file', data: busybox, mode: 0o755 })
  for (const a of applets) entries.push({ path: `bin/${a}`, type: 'symlink', target: 'busybox' })
  entries.push({ path: 'sbin', type: 'symlink', target: 'bin' })
  entries.push({ path: 'init', type: 'file', data: Buffer.from(initScript(groups)), mode: 0o755 })
  entries.push({ path: 'bin/vt-sync', type: 'file', data: Buffer.from(vtSyncScript()), mode: 0o755 })
  entries.push({ path: 'bin/vt-identity', type: 'file', data: Buffer.from(VT_IDENTITY_BASE64, 'base64'), mode: 0o755 })
  entries.push({ path: 'etc/hostname', type: 'file', data: Buffer.from('vt\n') })
  entries.push({ path: 'etc/passwd', type: 'file', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n') })
  entries.push({ path: 'etc/group', type: 'file', data: Buffer.from('root:x:0:\n') })
  for (const [name, ko] of contents) entries.push({ path: `lib/modules/${name}.ko`, type: 'file', data: ko })

  writeFileSync(join(tmp, 'initrd.cpio'), writeCpio(entries))
  writeFileSync(join(tmp, 'vmlinuz'), readFileSync(join(x, 'boot', vmlinuz)))
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(tmp, 'disk.qcow2'), '64M'])
  rmSync(x, { recursive: true, force: true })
  const manifest = {
    name: 'tiny',
    key,
    kernelVersion,
    append: TINY_APPEND,
    sources: [basename(kdeb), basename(bdeb)],
    modules: groups,
    builtAt: new Date().toISOString(),
    files: digestFiles(tmp, TINY_FILES),
  }
  writeFileSync(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
}
