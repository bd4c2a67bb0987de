// VmSpec (validated) + resolved files → the QEMU argv. No shell is involved anywhere: each value is one
// argv element. Values that go inside QEMU's comma-separated option syntax have commas doubled.
import { join } from 'node:path'
import type { VmSpecParsed } from '../../src/protocol/vm.ts'

export interface ResolvedDisk {
  id: string
  file: string
  format: 'qcow2' | 'raw'
  bus: 'virtio' | 'ide' | 'scsi'
  readOnly: boolean
  /** The base image when this is an overlay. */
  overlayOf?: string
  /** QEMU's protocol-layer blockdev options when not a plain file (a volume of an nfs pool, ...). */
  protocol?: Record<string, unknown>
}

export interface ArgvInput {
  spec: VmSpecParsed
  accel: 'kvm' | 'tcg'
  memoryMiB: number
  dir: string
  /** A short directory for the unix sockets (see sockets.ts). */
  sockDir: string
  kernel?: string
  initrd?: string
  append?: string
  disks: ResolvedDisk[]
  /** Whether to add the vt.cmd / vt.ctl channel ports (and the vt.shell console). */
  channel: boolean
  /** Guest RAM in a file (templates and their clones) instead of anonymous memory; see RAM_ID. */
  ram?: RamFile
  /** Tap NICs get a port on an empty hub instead (a QEMU that only loads and saves state: ramFile.ts). */
  nicsDetached?: boolean
}

/**
 * Guest RAM backed by a file: a template's QEMU writes its RAM to the file (share), a clone maps the template's
 * file copy-on-write (private), so it starts without copying the RAM at all. With `ignoreShared` the migration
 * stream leaves out shared RAM (saving a template) and the loading side expects none (starting a clone).
 */
export interface RamFile {
  file: string
  share: boolean
  ignoreShared: boolean
}

/**
 * Every VM's RAM is the memory backend of this id (anonymous unless a RamFile is given): RAM is migrated by
 * block name, so a clone (file-backed) and a plain VM must name their RAM alike to migrate between each other.
 */
export const RAM_ID = 'vt.ram'

/** QEMU option values escape ',' as ',,'. */
export function optValue(v: string): string {
  return v.replace(/,/g, ',,')
}

/** A VM's files: logs in its directory, sockets in its short socket directory. */
export const paths = (dir: string, sockDir: string) => ({
  qmp: join(sockDir, 'qmp.sock'),
  console: join(sockDir, 'console.sock'),
  consoleLog: join(dir, 'console.log'),
  cmd: join(sockDir, 'cmd.sock'),
  ctl: join(sockDir, 'ctl.sock'),
  /** The tiny guest's interactive shell (a virtio console, /dev/hvc0 in the guest): `vt console`. */
  shell: join(sockDir, 'shell.sock'),
  qga: join(sockDir, 'qga.sock'),
  stderr: join(dir, 'qemu.stderr'),
})

/** The socket of the extra console port number `index` (by number: port names may be long). */
export const portSocket = (sockDir: string, index: number) => join(sockDir, `port${index}.sock`)

export function qemuArgv(input: ArgvInput): string[] {
  const { spec, sockDir } = input
  const p = paths(input.dir, sockDir)
  const cpus = spec.cpus ?? 1
  const a: string[] = [
    '-name',
    `${optValue(`vt-${spec.name}`)},debug-threads=on`,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-machine',
    `${optValue(spec.machine ?? 'q35')},memory-backend=${RAM_ID}`,
    '-object',
    input.ram
      ? `memory-backend-file,id=${RAM_ID},size=${input.memoryMiB}M,mem-path=${optValue(input.ram.file)},share=${input.ram.share ? 'on' : 'off'}`
      : `memory-backend-ram,id=${RAM_ID},size=${input.memoryMiB}M`,
    '-accel',
    input.accel === 'tcg' && cpus > 1 ? 'tcg,thread=multi' : input.accel,
    '-smp',
    String(cpus),
    '-m',
    `${input.memoryMiB}M`,
    '-qmp',
    `unix:${optValue(p.qmp)},server=on,wait=off`,
    '-chardev',
    // logappend: a VM restored in place (a new QEMU) keeps its console log; a clone starts with the template's.
    `socket,id=vtcon,path=${optValue(p.console)},server=on,wait=off,logfile=${optValue(p.consoleLog)},logappend=on`,
    '-serial',
    'chardev:vtcon',
  ]
  if (spec.noReboot !== false) a.push('-no-reboot')
  if (spec.paused) a.push('-S')
  if (spec.incoming) a.push('-incoming', spec.incoming)
  if (spec.firmware) a.push('-bios', spec.firmware)
  if (input.kernel) {
    a.push('-kernel', input.kernel)
    if (input.initrd) a.push('-initrd', input.initrd)
    if (input.append) a.push('-append', input.append)
  }
  // Every VM gets the qemu-guest-agent port (agent/qga/): any guest that runs the agent has a command channel.
  const ports: { name: string; sock: string; id?: string }[] = [
    ...(input.channel
      ? [
          { name: 'vt.cmd', sock: p.cmd },
          { name: 'vt.ctl', sock: p.ctl },
        ]
      : []),
    { name: 'org.qemu.guest_agent.0', sock: p.qga, id: 'vtqga' },
    ...(spec.consoles ?? []).map((c, i) => ({ name: c.name, sock: portSocket(sockDir, i) })),
  ]
  a.push('-device', 'virtio-serial-pci,id=vtser')
  // Port 0 (the console port) carries the guest's shell, apart from the command channel and the serial log.
  if (input.channel)
    a.push(
      '-chardev',
      `socket,id=vtsh,path=${optValue(p.shell)},server=on,wait=off`,
      '-device',
      'virtconsole,bus=vtser.0,chardev=vtsh,name=vt.shell,nr=0',
    )
  ports.forEach(({ name, sock, id }, i) => {
    a.push('-chardev', `socket,id=vtport${i},path=${optValue(sock)},server=on,wait=off`)
    a.push('-device', `virtserialport,bus=vtser.0,chardev=vtport${i},name=${optValue(name)}${id ? `,id=${id}` : ''}`)
  })
  let scsi = false
  for (const d of input.disks) {
    a.push(
      '-blockdev',
      d.protocol && d.protocol.driver !== 'file'
        ? JSON.stringify({ ...d.protocol, 'node-name': `${d.id}-file`, ...(d.readOnly ? { 'read-only': true } : {}) })
        : `driver=file,node-name=${d.id}-file,filename=${optValue(d.file)}${d.readOnly ? ',read-only=on' : ''}`,
      '-blockdev',
      `driver=${d.format},node-name=${d.id},file=${d.id}-file${d.readOnly ? ',read-only=on' : ''}`,
    )
    if (d.bus === 'virtio') a.push('-device', `virtio-blk-pci,drive=${d.id},id=${d.id}-dev`)
    else if (d.bus === 'ide') a.push('-device', `ide-hd,drive=${d.id},id=${d.id}-dev`)
    else {
      if (!scsi) a.push('-device', 'virtio-scsi-pci,id=vtscsi')
      scsi = true
      a.push('-device', `scsi-hd,drive=${d.id},id=${d.id}-dev,bus=vtscsi.0`)
    }
  }
  ;(spec.nics ?? []).forEach((n, i) => {
    const id = `net${i}`
    // mode 'bridge' arrives here as 'tap' with the tap the manager made; handled the same for safety.
    if ((n.mode === 'tap' || n.mode === 'bridge') && input.nicsDetached)
      a.push('-netdev', `hubport,id=${id},hubid=${i}`)
    else if (n.mode === 'tap' || n.mode === 'bridge')
      a.push('-netdev', `tap,id=${id},ifname=${optValue(n.ifname ?? '')},script=no,downscript=no`)
    else a.push('-netdev', `user,id=${id},restrict=on`)
    a.push('-device', `virtio-net-pci,netdev=${id},id=${id}-dev${n.mac ? `,mac=${n.mac}` : ''}`)
  })
  a.push(...(spec.extraArgs ?? []))
  return a
}
