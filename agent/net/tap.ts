// A tap per NIC on a guest network's bridge: made before QEMU starts (QEMU opens it by name), with the
// bridge's MTU, and recorded as a 'link' resource so the reaper deletes it whatever happens to QEMU.
import { randomBytes } from 'node:crypto'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import { ipCmd, linkExists } from './cmd.ts'

export async function createTap(bridge: string): Promise<string> {
  if (!(await linkExists(bridge))) {
    throw new VtError(
      ErrorNames.notFound,
      `no network bridge ${bridge} on this host: the network was not created here (cluster.network(...) creates it on every host)`,
      { code: 'ENOENT' },
    )
  }
  const [br] = JSON.parse(await ipCmd('-j', 'link', 'show', 'dev', bridge)) as { mtu: number }[]
  const name = `vtt${randomBytes(5).toString('hex')}`
  await ipCmd('tuntap', 'add', 'dev', name, 'mode', 'tap')
  try {
    await ipCmd('link', 'set', name, 'mtu', String(br.mtu), 'master', bridge, 'up')
  } catch (e) {
    await deleteLink(name)
    throw e
  }
  return name
}

/** A tap on no bridge (a template's NIC: the device state of a tap NIC differs from a user-network one). */
export async function createLooseTap(): Promise<string> {
  const name = `vtt${randomBytes(5).toString('hex')}`
  await ipCmd('tuntap', 'add', 'dev', name, 'mode', 'tap')
  return name
}

export async function deleteLink(name: string): Promise<void> {
  await ipCmd('link', 'del', name).catch(() => {})
}
