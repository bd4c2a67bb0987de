// A real Debian 12 guest (project `debian`: `test.use({ image: 'debian' })`): systemd, openssh-server and a
// serial getty, with commands and files through qemu-guest-agent; results as with the tiny guest.
// One boot for the whole file: a systemd guest under TCG takes tens of seconds to boot.
import { expect, test } from 'vmtest-cluster'

test('a Debian guest: exec, files, services, console and QMP', async ({ vm }) => {
  expect(await vm.succeed('. /etc/os-release; echo $ID $VERSION_ID')).toBe('debian 12\n')
  expect(await vm.succeed('hostname')).toBe(`${vm.name}\n`)
  // Commands: stdout and stderr apart, exit codes, environment, failures with their output, timeouts.
  const r = await vm.exec('echo "$WHO"; echo oops >&2; exit 3', { env: { WHO: vm.host.name } })
  expect(r).toMatchObject({ stdout: `${vm.host.name}\n`, stderr: 'oops\n', exitCode: 3 })
  expect(await vm.fail('ls /nope')).toMatch(/No such file/)
  await expect(vm.exec('sleep 30', { timeout: 1000 })).rejects.toThrow(/did not finish within 1000 ms/)
  // Services: systemd runs the agent (started early, before udev: vt-qga.service) and sshd.
  expect(await vm.succeed('systemctl is-active vt-qga')).toBe('active\n')
  await vm.waitUntilSucceeds('systemctl is-active ssh', { timeout: 120_000, interval: 1000 })
  // Files both ways (guest-file-*), binary-safe.
  const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256))
  await vm.writeFile('/usr/local/bin/hello', '#!/bin/sh\necho "hello from $(hostname)"\n', { mode: 0o755 })
  expect(await vm.succeed('hello')).toBe(`hello from ${vm.name}\n`)
  await vm.writeFile('/root/bytes', bytes)
  expect(await vm.readFile('/root/bytes')).toEqual(bytes)
  // The serial getty, and QMP: pause and resume keep the guest's state.
  await vm.console.waitFor(/login:/, { timeout: 120_000 })
  await vm.pause()
  expect((await vm.qmp('query-status')).status).toBe('paused')
  await vm.resume()
  expect(await vm.succeed('cat /root/bytes | wc -c')).toBe('4096\n')
})
