// Tiny VMs (project `two-host`): a VM on each embedded host that runs commands, reads its serial console and
// speaks QMP; the `vm` fixture shaped by options; faults reported with the VM, host, command and output.
import { expect, test } from 'vmtest-cluster'

test('a tiny VM on each host: exec, console, QMP', async ({ cluster, createVm }) => {
  const vms = await Promise.all(cluster.hosts.map(host => createVm({ host })))
  for (const [i, vm] of vms.entries()) {
    expect(vm.host).toBe(cluster.hosts[i])
    // Commands: output, exit code, environment.
    expect(await vm.succeed('uname -s')).toBe('Linux\n')
    const r = await vm.exec('echo "$WHO"; echo oops >&2; exit 3', { env: { WHO: vm.host.name } })
    expect(r).toMatchObject({ stdout: `${vm.host.name}\n`, stderr: 'oops\n', exitCode: 3 })
    // The console: boot messages, and anything written to it now.
    await vm.console.waitFor(/vt-tiny: ready after [\d.]+s/)
    await vm.succeed(`echo hello from ${vm.name} > /dev/console`)
    await vm.console.waitFor(`hello from ${vm.name}`, { timeout: 5000 })
    // QMP: status, pause and resume, the guest keeps its state.
    expect((await vm.qmp('query-status')).status).toBe('running')
    await vm.succeed('echo kept > /tmp/state')
    await vm.pause()
    expect((await vm.qmp('query-status')).status).toBe('paused')
    await vm.resume()
    expect(await vm.succeed('cat /tmp/state')).toBe('kept\n')
    expect(await vm.qmp('human-monitor-command', { 'command-line': 'info name' })).toContain(vm.name)
  }
})

test.describe('the vm fixture', () => {
  test.use({ memory: '192M', cpus: 2 })

  test('takes its shape from test.use()', async ({ vm }) => {
    const memKiB = Number((await vm.succeed("awk '/MemTotal/ {print $2}' /proc/meminfo")).trim())
    expect(memKiB).toBeGreaterThan(150 * 1024)
    expect(memKiB).toBeLessThan(192 * 1024)
    expect((await vm.succeed('grep -c ^processor /proc/cpuinfo')).trim()).toBe('2')
    expect((await vm.qmp('query-cpus-fast')).length).toBe(2)
  })

  test('waits for a condition, and reports failures with command and output', async ({ vm }) => {
    await vm.exec('(sleep 1; touch /tmp/ready) > /dev/null 2>&1 &')
    await vm.waitUntilSucceeds('test -e /tmp/ready', { timeout: 10_000 })
    const err = await vm.succeed('ls /nope').catch(e => e as Error)
    expect(String(err)).toMatch(/VM .* on host .*: `ls \/nope` failed with exit code 1\nstderr:\n.*No such file/)
    await expect(vm.exec('sleep 30', { timeout: 500 })).rejects.toThrow(/did not finish within 500 ms/)
    expect(await vm.succeed('echo still here')).toBe('still here\n')
  })

  test('binary output arrives byte for byte', async ({ vm }) => {
    const r = await vm.exec('head -c 65536 /dev/urandom | tee /tmp/r | md5sum >&2; cat /tmp/r')
    const { createHash } = await import('node:crypto')
    expect(createHash('md5').update(r.stdoutBytes).digest('hex')).toBe(r.stderr.split(' ')[0])
  })
})
