// The debian guest: a Debian 12 root filesystem (systemd, qemu-guest-agent, openssh-server, a serial getty)
// made by mmdebstrap from the archive apt already uses, turned into an ext4 qcow2 by mke2fs -d (no loop
// mounts, no root needed beyond what mmdebstrap needs), booted directly with its own kernel and initramfs.
// Commands reach it through qemu-guest-agent (agent/qga/). Cached under a key hashing the recipe and the
// apt sources; the manifest records the versions installed. `vt image build debian --force` refreshes it.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { aptSources, debianLines } from './aptSources.ts'
import { cacheDir, ensureDir, removeDeadBuilds, replaceDir, withLock } from './cache.ts'
import type { BootImage, Progress } from './tiny.ts'
import { checkEntry, digestFiles, prehash } from './verify.ts'

/** Bump when the recipe changes in a way the hash of this file's recipe strings would not show. */
const RECIPE_VERSION = 1
const SUITE = 'bookworm'

export const DEBIAN_FILES = ['vmlinuz', 'initrd.img', 'disk.qcow2'] as const

export interface DebianImage extends BootImage {
  name: 'debian'
  /** The root filesystem (ext4, qcow2): every VM boots an overlay of it as its first disk. */
  disk: string
}

/** qemu-guest-agent, systemd and the rest are the point; iproute2 and procps for the examples' commands. */
const PACKAGES = [
  'systemd-sysv',
  'udev',
  'qemu-guest-agent',
  'openssh-server',
  'linux-image-cloud-amd64',
  'iproute2',
  'procps',
  'kmod',
]

/**
 * Units that cost boot time under TCG and do nothing for a test guest: timers, consoles that do not exist
 * (-nodefaults leaves no VGA), and module loads for features it does not use.
 */
const MASKED = [
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'dpkg-db-backup.timer',
  'e2scrub_all.timer',
  'e2scrub_reap.service',
  'fstrim.timer',
  'systemd-tmpfiles-clean.timer',
  'getty-static.service',
  'getty@tty1.service',
  'modprobe@dm_mod.service',
  'modprobe@efi_pstore.service',
  'modprobe@fuse.service',
  'modprobe@loop.service',
  'modprobe@drm.service',
  // Replaced by vt-qga.service (below): two agents cannot share the port.
  'qemu-guest-agent.service',
]

/**
 * vt-net: what the tiny guest does with `vt.nic=<mac>,<ip/prefix or ->,<mtu or ->` and `vt.gw=` on the
 * kernel command line, for the NICs of the VM spec (found by MAC, whatever systemd names them).
 */
const VT_NET = `#!/bin/sh
for w in $(cat /proc/cmdline); do
  case "$w" in
  vt.nic=*) set -- $(echo "\${w#vt.nic=}" | tr , ' ')
    for d in /sys/class/net/*; do
      [ "$(cat "$d/address")" = "$1" ] || continue
      n=\${d##*/}
      [ "$3" != - ] && ip link set "$n" mtu "$3"
      ip link set "$n" up
      [ "$2" != - ] && ip addr add "$2" dev "$n"
    done ;;
  esac
done
for w in $(cat /proc/cmdline); do case "$w" in vt.gw=*) ip route add default via "\${w#vt.gw=}" ;; esac; done
exit 0
`

const VT_NET_UNIT = `[Unit]
Description=vt: NIC addresses from the kernel command line
After=systemd-udevd.service
Before=network.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vt-net
[Install]
WantedBy=multi-user.target
`

/**
 * qemu-guest-agent started as soon as its port exists, before udev and the rest of the boot: the packaged unit
 * waits for udev to announce the port's device, which under TCG comes a minute or more later (measured: guest
 * time 33 s to systemd, 129 s to the packaged agent). Commands can run while the boot goes on.
 */
const VT_QGA = `#!/bin/sh
modprobe virtio_console 2>/dev/null
i=0
while [ $i -lt 1200 ]; do
  for p in /sys/class/virtio-ports/*; do
    if [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && [ -e "/dev/\${p##*/}" ]; then
      exec /usr/sbin/qemu-ga -m virtio-serial -p "/dev/\${p##*/}"
    fi
  done
  sleep 0.1
  i=$((i+1))
done
echo "vt-qga: no virtio-serial port org.qemu.guest_agent.0" >&2
exit 1
`

const VT_QGA_UNIT = `[Unit]
Description=QEMU Guest Agent, started early (vt)
DefaultDependencies=no
Before=sysinit.target shutdown.target
Conflicts=shutdown.target
[Service]
ExecStart=/usr/local/sbin/vt-qga
Restart=always
RestartSec=1
[Install]
WantedBy=sysinit.target
`

/** Runs inside mmdebstrap's customize phase: $1 is the root directory. */
const CUSTOMIZE = [
  'echo vt > "$1/etc/hostname"',
  'passwd --root "$1" -d root',
  'echo "/dev/vda / ext4 rw,relatime 0 0" > "$1/etc/fstab"',
  'mkdir -p "$1/etc/systemd/journald.conf.d" && printf "[Journal]\\nStorage=volatile\\n" > "$1/etc/systemd/journald.conf.d/vt.conf"',
  `systemctl --root "$1" mask ${MASKED.join(' ')}`,
  'rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"',
]

/** Kernel modules the initramfs needs to mount the root disk (MODULES=list keeps it small). */
const INITRAMFS = [
  'mkdir -p "$1/etc/initramfs-tools/conf.d"',
  'echo MODULES=list > "$1/etc/initramfs-tools/conf.d/vt.conf"',
  'printf "virtio_pci\\nvirtio_blk\\next4\\n" > "$1/etc/initramfs-tools/modules"',
]

export const DEBIAN_APPEND =
  'root=/dev/vda rw console=ttyS0 quiet systemd.show_status=false no_timer_check cryptomgr.notests ' +
  'mitigations=off nokaslr net.ifnames=0'

/** systemd, udev and the agent under TCG: 256 MiB boots, with room for the tests' commands. */
export const DEBIAN_MIN_MEMORY_MIB = 256

function recipeKey(lines: string[]): string {
  const h = createHash('sha256')
  h.update(`v${RECIPE_VERSION}\n${SUITE}\n${PACKAGES.join(',')}\n${MASKED.join(',')}\n`)
  h.update(`${CUSTOMIZE.join('\n')}\n${INITRAMFS.join('\n')}\n${VT_NET}${VT_NET_UNIT}${DEBIAN_APPEND}\n`)
  h.update(`${VT_QGA}${VT_QGA_UNIT}`)
  h.update(lines.join('\n'))
  return h.digest('hex').slice(0, 16)
}

/** Where the current recipe's entry is (built or not): `vt image prune` keeps it. */
export function debianEntryDir(): string | undefined {
  const lines = debianLines(aptSources(), SUITE)
  return lines.length ? join(cacheDir(), 'images', `debian-${recipeKey(lines)}`) : undefined
}

/** Returns the cached debian image, building it first (about a minute) when missing or broken. */
export async function ensureDebian(opts: { progress?: Progress; force?: boolean } = {}): Promise<DebianImage> {
  const progress = opts.progress ?? (() => {})
  const lines = debianLines(aptSources(), SUITE)
  if (lines.length === 0) {
    throw new Error(
      `no Debian ${SUITE} entry in /etc/apt/sources.list or sources.list.d: the debian image is built from the ` +
        `archive apt uses. Add one (e.g. "deb http://deb.debian.org/debian ${SUITE} main") and run apt-get update`,
    )
  }
  const root = ensureDir(join(cacheDir(), 'images'))
  const key = recipeKey(lines)
  const dir = join(root, `debian-${key}`)
  const check = () => (existsSync(dir) ? checkEntry(dir, DEBIAN_FILES) : undefined)
  if (!opts.force) {
    await prehash(dir, DEBIAN_FILES)
    const c = check()
    if (c?.ok) return toImage(dir, c.manifest)
  }
  return withLock(
    join(root, `debian-${key}.lock`),
    async () => {
      if (!opts.force) {
        await prehash(dir, DEBIAN_FILES)
        const c = check()
        if (c?.ok) return toImage(dir, c.manifest)
        if (c) progress(`the cached debian image ${dir} is broken: ${c.problem}; rebuilding it`)
      }
      const t0 = Date.now()
      progress(`building the debian image (Debian 12 ${SUITE}) with mmdebstrap from ${lines.join('; ')}`)
      removeDeadBuilds(root, 'debian')
      const tmp = join(root, `.tmp-debian-${key}-${process.pid}`)
      rmSync(tmp, { recursive: true, force: true })
      try {
        await build(tmp, lines, key, progress)
        replaceDir(tmp, dir, join(root, `.old-debian-${key}-${process.pid}`))
      } finally {
        rmSync(tmp, { recursive: true, force: true })
      }
      await prehash(dir, DEBIAN_FILES)
      const c = checkEntry(dir, DEBIAN_FILES)
      if (!c.ok) throw new Error(`the freshly built debian image ${dir} fails its own check: ${c.problem}`)
      progress(`debian image ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${dir}`)
      return toImage(dir, c.manifest)
    },
    { onWait: owner => progress(`waiting for another build of the debian image (${owner})`) },
  )
}

function toImage(dir: string, m: Record<string, unknown>): DebianImage {
  return {
    ...(m as Pick<DebianImage, 'kernelVersion' | 'key'>),
    name: 'debian',
    append: DEBIAN_APPEND,
    minMemoryMiB: DEBIAN_MIN_MEMORY_MIB,
    dir,
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    disk: join(dir, 'disk.qcow2'),
  }
}

/** Runs a command, passing its stderr lines to `onLine`; rejects with the last lines when it fails. */
function runTool(cmd: string, args: string[], onLine: (line: string) => void = () => {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const tail: string[] = []
    let partial = ''
    p.stdout.on('data', d => {
      out += d
    })
    p.stderr.on('data', d => {
      const parts = (partial + d).split('\n')
      partial = parts.pop() ?? ''
      for (const l of parts) {
        tail.push(l)
        if (tail.length > 15) tail.shift()
        onLine(l)
      }
    })
    p.on('error', e => reject(new Error(`cannot run ${cmd}: ${e.message} (run \`vt setup\` to install it)`)))
    p.on('close', code => {
      if (code === 0) resolve(out)
      else reject(new Error(`${cmd} exited with code ${code}:\n${[...tail, partial].join('\n').trim()}`))
    })
  })
}

async function build(tmp: string, lines: string[], key: string, progress: Progress): Promise<void> {
  ensureDir(tmp)
  const rootfs = join(tmp, 'rootfs')
  const customize = [
    ...CUSTOMIZE,
    `printf '%s' '${VT_NET}' > "$1/usr/local/sbin/vt-net" && chmod 755 "$1/usr/local/sbin/vt-net"`,
    `printf '%s' '${VT_NET_UNIT}' > "$1/etc/systemd/system/vt-net.service"`,
    `printf '%s' '${VT_QGA}' > "$1/usr/local/sbin/vt-qga" && chmod 755 "$1/usr/local/sbin/vt-qga"`,
    `printf '%s' '${VT_QGA_UNIT}' > "$1/etc/systemd/system/vt-qga.service"`,
    'systemctl --root "$1" enable vt-net.service vt-qga.service',
  ]
  await runTool(
    'mmdebstrap',
    [
      '--mode=auto',
      '--variant=minbase',
      '--format=directory',
      `--include=${PACKAGES.join(',')}`,
      '--dpkgopt=path-exclude=/usr/share/doc/*',
      '--dpkgopt=path-exclude=/usr/share/man/*',
      '--dpkgopt=path-exclude=/usr/share/locale/*',
      `--essential-hook=${INITRAMFS.join(' && ')}`,
      ...customize.map(c => `--customize-hook=${c}`),
      SUITE,
      rootfs,
      ...lines,
    ],
    line => {
      if (/^[IWE]: /.test(line)) progress(`mmdebstrap: ${line.slice(3)}`)
    },
  )
  const boot = readdirSync(join(rootfs, 'boot'))
  const vmlinuz = boot.find(f => f.startsWith('vmlinuz-'))
  const initrd = boot.find(f => f.startsWith('initrd.img-'))
  if (!vmlinuz || !initrd) throw new Error(`mmdebstrap made no /boot/vmlinuz-* and initrd.img-* in ${rootfs}`)
  const kernelVersion = vmlinuz.slice('vmlinuz-'.length)
  copyFileSync(join(rootfs, 'boot', vmlinuz), join(tmp, 'vmlinuz'))
  copyFileSync(join(rootfs, 'boot', initrd), join(tmp, 'initrd.img'))
  const versions = await runTool('dpkg-query', [
    `--admindir=${join(rootfs, 'var/lib/dpkg')}`,
    '-W',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format, not a template
    '-f=${Package} ${Version}\\n',
    ...PACKAGES.filter(p => p !== 'linux-image-cloud-amd64'),
    `linux-image-${kernelVersion}`,
  ])
  progress('making the ext4 root filesystem (mke2fs -d) and its qcow2')
  const raw = join(tmp, 'disk.raw')
  await runTool('mke2fs', ['-q', '-t', 'ext4', '-L', 'vtroot', '-d', rootfs, raw, '2G'])
  rmSync(rootfs, { recursive: true, force: true })
  await runTool('qemu-img', ['convert', '-O', 'qcow2', raw, join(tmp, 'disk.qcow2')])
  rmSync(raw, { force: true })
  await prehash(tmp, DEBIAN_FILES)
  const manifest = {
    name: 'debian',
    key,
    kernelVersion,
    append: DEBIAN_APPEND,
    sources: lines,
    packages: versions.trim().split('\n'),
    builtAt: new Date().toISOString(),
    files: digestFiles(tmp, DEBIAN_FILES),
  }
  writeFileSync(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
}
